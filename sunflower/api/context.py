"""What every resolver gets: who is asking, why, the services, and this request's dataloaders."""

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from sunflower.api.loaders import Loaders
from sunflower.auth.principals import Principal
from sunflower.container import Services, services

PURPOSE_HEADER = "x-purpose"


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | None
    principal: Principal | None
    purpose: str
    services: Services
    # A WebSocket's graphql-transport-ws `connection_init` payload (strawberry sets it).
    connection_params: dict[str, Any] | None = None
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.services, self.principal, self.purpose)

    def connect(self, principal: Principal | None, purpose: str) -> None:
        """A WebSocket connection's caller and purpose, known only once `connection_init` arrives."""
        self.principal = principal
        self.purpose = purpose or self.purpose
        self.loaders = Loaders(self.services, self.principal, self.purpose)

    def require_principal(self) -> Principal:
        from sunflower.common.errors import Unauthenticated

        if self.principal is None:
            raise Unauthenticated("Sign in first: this needs a bearer token")
        return self.principal


def build_context(request: Request | WebSocket, response: Response | None) -> Context:
    state: Any = request.scope.get("state") or {}
    return Context(
        request=request,
        response=response,
        principal=state.get("principal"),
        purpose=purpose_of(request.headers.get(PURPOSE_HEADER)),
        services=services(),
    )


def purpose_of(value: object) -> str:
    # HTTP headers are Latin-1: a purpose in Chinese arrives percent-encoded UTF-8 (RFC 3986).
    return unquote(value, errors="replace").strip()[:200] if isinstance(value, str) else ""
