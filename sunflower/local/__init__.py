"""The embedded local cloud: moto server, resources from infra/serverless.yml, event pump, dev server."""
