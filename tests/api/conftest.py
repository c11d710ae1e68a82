"""GraphQL operations from graphql/operations/ against the real schema, app and embedded cloud."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from graphql.language import FragmentSpreadNode, Visitor, visit
from starlette.testclient import TestClient

from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse, print_ast

OPERATIONS = Path(__file__).resolve().parents[2] / "graphql" / "operations"


@cache
def _definitions() -> tuple[dict[str, OperationDefinitionNode], dict[str, FragmentDefinitionNode]]:
    document = parse("\n".join(p.read_text() for p in sorted(OPERATIONS.glob("*.graphql"))))
    operations = {d.name.value: d for d in document.definitions if isinstance(d, OperationDefinitionNode)}
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    return operations, fragments


def document(name: str) -> str:
    """The named operation with exactly the fragments it spreads (transitively)."""
    operations, fragments = _definitions()
    needed: list[str] = []

    class Spreads(Visitor):
        def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
            if node.name.value not in needed:
                needed.append(node.name.value)
                visit(fragments[node.name.value], self)

    visit(operations[name], Spreads())
    return "\n".join(print_ast(n) for n in [operations[name], *(fragments[f] for f in needed)])


@dataclass
class Api:
    client: TestClient
    identity: Any

    def token(self, *roles: str, user: str = "u1", community: str | None = None) -> str:
        from sunflower.auth.principals import Role
        from sunflower.local.identity import issue_token

        return issue_token(
            self.identity.user_pool_id, self.identity.client_id,
            user=user, roles=[Role(r) for r in roles], community_id=community,
        )

    def post(self, body: Any, token: str | None = None, **headers: str):
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.post("/graphql", json=body, headers=headers)

    def run(self, operation: str, variables: dict | None = None, *, token: str | None = None) -> dict:
        """Execute a named operation; returns the whole GraphQL response (data and errors)."""
        response = self.post({"query": document(operation), "variables": variables or {}}, token)
        assert response.status_code == 200, response.text
        return response.json()

    def socket(self):
        """A graphql-transport-ws connection to /graphql (a context manager)."""
        return graphql_socket(self.client)

    def data(self, operation: str, variables: dict | None = None, *, token: str | None = None) -> dict:
        result = self.run(operation, variables, token=token)
        assert "errors" not in result, result["errors"]
        return result["data"]


@pytest.fixture
def api(local_cloud) -> Api:
    from sunflower.api.app import create_app

    return Api(TestClient(create_app()), local_cloud.identity)


# --- subscriptions: graphql-transport-ws over the TestClient's WebSocket -------------------------


@dataclass
class GraphQLSocket:
    """A graphql-transport-ws client whose every wait has a timeout, so a silent server fails the test."""

    session: Any  # starlette.testclient.WebSocketTestSession

    def send(self, message: dict) -> None:
        self.session.send_json(message)

    def receive(self, timeout: float = 5.0) -> dict:
        import json

        import anyio

        async def next_message() -> Any:
            with anyio.fail_after(timeout):
                return await self.session._send_rx.receive()  # receive() itself waits forever

        message = self.session.portal.call(next_message)
        self.session._raise_on_close(message)  # a close becomes WebSocketDisconnect(code)
        return json.loads(message["text"])

    def init(self, payload: dict | None = None) -> dict:
        self.send({"type": "connection_init", "payload": payload or {}})
        return self.receive()

    def subscribe(self, operation: str, variables: dict | None = None, id: str = "1") -> None:
        self.send({"id": id, "type": "subscribe",
                   "payload": {"query": document(operation), "variables": variables or {}, "operationName": operation}})

    def next(self, id: str = "1", timeout: float = 5.0) -> dict:
        """The next message of operation `id` (next, error or complete), pings answered on the way."""
        while True:
            message = self.receive(timeout)
            if message["type"] == "ping":
                self.send({"type": "pong"})
            elif message.get("id") == id:
                return message

    def silent_for(self, seconds: float) -> bool:
        try:
            self.receive(seconds)
        except TimeoutError:
            return True
        return False


@contextmanager
def graphql_socket(client: TestClient) -> Iterator[GraphQLSocket]:
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as session:
        yield GraphQLSocket(session)
