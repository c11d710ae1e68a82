'use strict';

// Two gaps of Serverless Framework v3 (pinned in package.json; v4 cannot run here), closed as a
// local plugin so serverless.yml stays plain.
//
// 1. v3's config schema predates the python3.12 Lambda runtime and warns (or, with
//    configValidationMode: error, fails) on `runtime: python3.12`; teach it the runtime.
// 2. `serverless package` must work with no AWS account and no network (bin/package-infra, CI),
//    but v3 asks CloudFormation for the deployed stack while compiling layers, to reuse an
//    already uploaded layer zip (serverless/serverless#8187); offline that retries for ~30 s and
//    fails. During `package` only, every AWS request is answered here: the stack "does not
//    exist" (as before a first deploy, so the template points at a fresh layer upload) and any
//    other call fails at once, naming itself. `deploy` and all other commands are untouched.
const EXTRA_RUNTIMES = ['python3.12'];

class FrameworkV3Fixes {
  constructor(serverless) {
    const runtimes = serverless.configSchemaHandler.schema.definitions.awsLambdaRuntime.enum;
    for (const runtime of EXTRA_RUNTIMES) if (!runtimes.includes(runtime)) runtimes.push(runtime);

    const commands = (serverless.processedInput && serverless.processedInput.commands) || [];
    if (commands.join(' ') !== 'package') return;
    const provider = serverless.getProvider('aws');
    provider.request = async (service, method) => {
      if (service === 'CloudFormation' && method === 'describeStacks') {
        throw new Error(`Stack ${provider.naming.getStackName()} does not exist (offline package)`);
      }
      throw new serverless.classes.Error(
        `offline package: refusing AWS call ${service}.${method}; package must not need AWS`
      );
    };
  }
}

module.exports = FrameworkV3Fixes;
