"""The ASGI application: GraphQL (with GraphiQL), device endpoints and a health check.

The same app runs under uvicorn on a laptop and behind Mangum on Lambda.
"""

from functools import cache

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL

from sunflower.api.context import Context, build_context
from sunflower.api.devices import http as device_http
from sunflower.api.http import BearerAuth, GraphQLRequestGuard
from sunflower.api.schema import schema
from sunflower.common.settings import get_settings


class _GraphQL(GraphQL):
    async def get_context(self, request, response) -> Context:  # type: ignore[override]
        return build_context(request, response)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


@cache
def create_app() -> Starlette:
    settings = get_settings()
    graphql = GraphQLRequestGuard(BearerAuth(_GraphQL(schema(), graphql_ide="graphiql")), settings.max_body_bytes)
    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/devices/heartbeat", device_http.signed(device_http.heartbeat), methods=["POST"]),
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
        ]
    )
