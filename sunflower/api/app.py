"""The ASGI application: GraphQL (with GraphiQL), device endpoints and a health check.

The same app runs under uvicorn on a laptop and behind Mangum on Lambda.
"""

from functools import cache

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError

from sunflower.api.context import Context, build_context, purpose_of
from sunflower.api.devices import gates as gate_http
from sunflower.api.devices import http as device_http
from sunflower.api.devices import traffic as traffic_http
from sunflower.api.http import BearerAuth, GraphQLRequestGuard, connection_principal
from sunflower.api.schema import schema
from sunflower.common.errors import DomainError
from sunflower.common.settings import get_settings


class _GraphQL(GraphQL):
    async def get_context(self, request, response) -> Context:  # type: ignore[override]
        return build_context(request, response)

    async def on_ws_connect(self, context: Context):  # type: ignore[override]
        """Subscriptions sign in with connection_init: a bad token closes the socket (4403 Forbidden)."""
        params = context.connection_params or {}
        try:
            principal = await connection_principal(params)
        except DomainError as exc:
            raise ConnectionRejectionError({"code": exc.code, "message": exc.message}) from exc
        purpose = next((params[k] for k in ("purpose", "X-Purpose", "x-purpose") if params.get(k)), None)
        context.connect(principal, purpose_of(purpose))
        return await super().on_ws_connect(context)


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
            *gate_http.routes(),
            *traffic_http.routes(),
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
        ]
    )
