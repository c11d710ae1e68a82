"""Office workflow figures: starting and completing through the GraphQL API, and due timers per second.

Run: sunflower bench office [--runs N] [--timers N]
1. API: an official starts N instances of a two-step approval (startWorkflow) and completes each one's
   first task with its form (completeTask), every request a real-shaped API Gateway event through the
   Mangum handler of functions/graphql_api.py against an embedded moto server: p50/p99 of each, and
   DynamoDB requests per operation. Baseline: `{ __typename }` through the same handler and token.
2. Timers: N instances (default 10,000) whose reminder timers are all due, woken by the scheduled
   function functions/office_timers.handler, invoked as EventBridge would until nothing is left.
Ends with one JSON line. Targets (issue 6): completeTask p99 < 100 ms; 10k due timers in < 60 s.
"""

import argparse
import gc
import json
import logging
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEPARTMENT, CLERK = "bench-office", "bench-clerk"
_FORM = '{&quot;type&quot;: &quot;object&quot;, &quot;required&quot;: [&quot;approved&quot;], &quot;properties&quot;: ' \
        '{&quot;approved&quot;: {&quot;type&quot;: &quot;boolean&quot;}, &quot;note&quot;: {&quot;type&quot;: &quot;string&quot;}}}'
APPROVAL = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="bench" targetNamespace="urn:bench">
  <bpmn:process id="bench_approval" name="Bench approval" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="approve"/>
    <bpmn:userTask id="approve" name="Approve">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="department" value="${{department}}"/>
        <spiffworkflow:property name="formSchema" value="{_FORM}"/>
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:boundaryEvent id="nudge" attachedToRef="approve" cancelActivity="false">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="action" value="remind"/></spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:outgoing>f4</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>remind_after</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f4" sourceRef="nudge" targetRef="nudged"/>
    <bpmn:endEvent id="nudged"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="approve" targetRef="file"/>
    <bpmn:userTask id="file" name="File it">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="role" value="official"/></spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f3" sourceRef="file" targetRef="done"/>
    <bpmn:endEvent id="done"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""
START = """mutation($input: StartWorkflowInput!) { startWorkflow(input: $input) {
  __typename ... on WorkflowInstance { id version openTasks { taskId name } } ... on Error { code message } } }"""
COMPLETE = """mutation($input: CompleteTaskInput!) { completeTask(input: $input) {
  __typename ... on WorkflowInstance { id version status openTasks { taskId name } } ... on Error { code message } } }"""


def _event(body: dict, token: str) -> dict:
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": "/graphql", "rawQueryString": "",
        "headers": {"host": "api.example.gov.cn", "content-type": "application/json", "authorization": f"Bearer {token}"},
        "requestContext": {"accountId": "123456789012", "apiId": "bench", "domainName": "api.example.gov.cn",
                           "domainPrefix": "api", "http": {"method": "POST", "path": "/graphql", "protocol": "HTTP/1.1",
                                                            "sourceIp": "127.0.0.1", "userAgent": "bench"},
                           "requestId": "bench", "routeKey": "$default", "stage": "$default",
                           "time": "24/Nov/2026:06:00:00 +0000", "timeEpoch": 1795500000000},
        "body": json.dumps(body), "isBase64Encoded": False,
    }


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class _Requests:
    """Counts DynamoDB requests (every pynamodb call, transactions included)."""

    def __enter__(self):
        from pynamodb.connection.base import Connection

        self.calls = 0
        self._original = original = Connection._make_api_call
        counter = self

        def counting(conn, operation_name, operation_kwargs, *args, **kwargs):
            counter.calls += 1
            return original(conn, operation_name, operation_kwargs, *args, **kwargs)

        Connection._make_api_call = counting
        return self

    def __exit__(self, *exc) -> None:
        from pynamodb.connection.base import Connection

        Connection._make_api_call = self._original


def _call(handler, context, body: dict, token: str) -> tuple[float, dict]:
    started = time.perf_counter()
    response = handler(_event(body, token), context)
    elapsed = (time.perf_counter() - started) * 1000
    assert response["statusCode"] == 200, response
    result = json.loads(response["body"])
    assert "errors" not in result, result
    return elapsed, result["data"]


def _freeze() -> None:
    """Keep what the process holds so far out of the garbage collector's full passes.

    The embedded moto server lives in this process: its tables (tens of thousands of items after the
    seeding) would make every full collection during a measured call scan them, which a Lambda
    container, whose DynamoDB is elsewhere, never does.
    """
    gc.collect()
    gc.freeze()


def setup(local) -> str:
    from sunflower.auth.principals import SYSTEM, Role
    from sunflower.container import services
    from sunflower.local.identity import issue_token

    office = services().office
    office.org.add_department(SYSTEM, "基准测试科", code=DEPARTMENT)
    office.org.add_staff(SYSTEM, CLERK, "基准测试员", DEPARTMENT)
    office.workflows.deploy(SYSTEM, APPROVAL)
    return issue_token(local.identity.user_pool_id, local.identity.client_id, user=CLERK, roles=[Role.OFFICIAL])


def bench_api(local, token: str, runs: int) -> dict:
    from functions import graphql_api
    from sunflower.local.lambda_context import LambdaContext

    context = LambdaContext.for_invocation("api", region=local.catalog.region, timeout_s=900)
    variables = {"definitionKey": "bench_approval", "variables": {"department": DEPARTMENT, "remind_after": "P3D"}}

    def start() -> tuple[float, dict]:
        elapsed, data = _call(graphql_api.handler, context, {"query": START, "variables": {"input": variables}}, token)
        assert data["startWorkflow"]["__typename"] == "WorkflowInstance", data
        return elapsed, data["startWorkflow"]

    def complete(instance: dict) -> float:
        task = instance["openTasks"][0]
        body = {"query": COMPLETE, "variables": {"input": {
            "instanceId": instance["id"], "taskId": task["taskId"], "expectedVersion": instance["version"],
            "formData": {"approved": True, "note": "同意"}, "comment": "bench"}}}
        elapsed, data = _call(graphql_api.handler, context, body, token)
        done = data["completeTask"]
        assert done["__typename"] == "WorkflowInstance" and [t["name"] for t in done["openTasks"]] == ["File it"], done
        return elapsed

    trivial = {"query": "{ __typename }"}
    for _ in range(20):  # warm up: JWKS, compiled definition, staff cache, strawberry's caches
        _call(graphql_api.handler, context, trivial, token)
        complete(start()[1])
    _freeze()
    baseline = [_call(graphql_api.handler, context, trivial, token)[0] for _ in range(runs)]
    with _Requests() as counted:
        started = [start() for _ in range(runs)]
    start_requests = counted.calls / runs
    with _Requests() as counted:
        completed = [complete(instance) for _, instance in started]
    complete_requests = counted.calls / runs
    starts = [elapsed for elapsed, _ in started]
    return {
        "runs": runs,
        "baseline_p50_ms": round(pct(baseline, .5), 2), "baseline_p99_ms": round(pct(baseline, .99), 2),
        "start_p50_ms": round(pct(starts, .5), 2), "start_p99_ms": round(pct(starts, .99), 2),
        "complete_p50_ms": round(pct(completed, .5), 2), "complete_p99_ms": round(pct(completed, .99), 2),
        "start_mean_ms": round(statistics.fmean(starts), 2), "complete_mean_ms": round(statistics.fmean(completed), 2),
        "dynamodb_requests_start": round(start_requests, 1), "dynamodb_requests_complete": round(complete_requests, 1),
    }


def bench_timers(local, n: int) -> dict:
    """N instances started two hours ago with a one-hour reminder: all due now."""
    from functions import office_timers
    from sunflower.auth.principals import SYSTEM
    from sunflower.local.lambda_context import LambdaContext
    from sunflower.local.scheduler import scheduled_event
    from sunflower.office.wiring import build_office

    past = datetime.now(UTC) - timedelta(hours=2)
    earlier = build_office(clock=lambda: past)
    seeded = time.perf_counter()
    data = {"department": DEPARTMENT, "remind_after": "PT1H"}
    for offset in range(0, n, 500):
        earlier.workflows.start_many(SYSTEM, "bench_approval", [(data, None)] * min(500, n - offset))
    seed_s = time.perf_counter() - seeded
    _freeze()

    woken = conflicts = failed = invocations = calls = 0
    started = time.perf_counter()
    while True:
        now = datetime.now(UTC)
        context = LambdaContext.for_invocation("officeTimers", region=local.catalog.region, timeout_s=900)
        result = office_timers.handler(scheduled_event(local.catalog.region, "bench-office-timers", now), context)
        invocations += 1
        calls += result["calls"]
        woken, conflicts, failed = woken + result["woken"], conflicts + result["conflicts"], failed + result["failed"]
        if not result["more"]:
            break
    elapsed = time.perf_counter() - started
    assert (woken, failed) == (n, 0), (woken, conflicts, failed)
    return {"timers": n, "timers_s": round(elapsed, 2), "timers_per_s": round(n / elapsed, 1),
            "invocations": invocations, "wake_calls": calls, "conflicts": conflicts, "seed_s": round(seed_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300, help="Starts and completions to time.")
    parser.add_argument("--timers", type=int, default=10_000, help="Due timers for the scheduled function.")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"  # EMF lines would bury the figures
    logging.disable(logging.WARNING)
    from sunflower.local import cloud

    local = cloud.start()
    local.build()
    try:
        token = setup(local)
        api = bench_api(local, token, args.runs)
        timers = bench_timers(local, args.timers)
    finally:
        local.stop()

    rows = [
        ("{ __typename } p50 / p99 (baseline, same handler)", f"{api['baseline_p50_ms']:.1f} / {api['baseline_p99_ms']:.1f} ms", ""),
        ("startWorkflow p50 / p99", f"{api['start_p50_ms']:.1f} / {api['start_p99_ms']:.1f} ms", ""),
        ("completeTask p50 / p99", f"{api['complete_p50_ms']:.1f} / {api['complete_p99_ms']:.1f} ms", "p99 < 100 ms"),
        ("DynamoDB requests per start / complete",
         f"{api['dynamodb_requests_start']:g} / {api['dynamodb_requests_complete']:g}", ""),
        (f"{timers['timers']} due timers through officeTimers", f"{timers['timers_s']:.1f} s", "< 60 s (10k)"),
        ("  throughput", f"{timers['timers_per_s']:.0f} timers/s", ""),
        ("  invocations / wake_due calls", f"{timers['invocations']} / {timers['wake_calls']}", ""),
    ]
    for name, value, target in rows:
        print(f"{name:52} {value:>18}  {target}")
    scale = timers["timers"] / 10_000
    print(json.dumps({
        "runs": api["runs"],
        "baseline_p50_ms": api["baseline_p50_ms"], "baseline_p99_ms": api["baseline_p99_ms"],
        "start_p50_ms": api["start_p50_ms"], "start_p99_ms": api["start_p99_ms"],
        "complete_p50_ms": api["complete_p50_ms"], "complete_p99_ms": api["complete_p99_ms"],
        "dynamodb_requests_start": api["dynamodb_requests_start"],
        "dynamodb_requests_complete": api["dynamodb_requests_complete"],
        "timers": timers["timers"],
        "timers_10k_s": round(timers["timers_s"] / scale, 2),
        "timers_per_s": timers["timers_per_s"],
        "timers_invocations": timers["invocations"],
    }))


if __name__ == "__main__":
    main()
