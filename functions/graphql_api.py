"""API Gateway (HTTP API, payload 2.0) -> the Sunflower ASGI app: GraphQL, device endpoints, health."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from mangum import Mangum

from sunflower.api.app import create_app

logger = Logger()
asgi = Mangum(create_app(), lifespan="off", api_gateway_base_path="/")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return asgi(event, context)
