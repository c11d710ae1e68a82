"""Bad requests get a clear, specific error and write nothing."""

import json

import boto3
import pytest

from sunflower.common.settings import get_settings

REGISTER = 'mutation { registerDevice(input: {kind: GATE, name: "g", siteId: "s"}) { __typename } }'


def _written() -> int:
    """Items in every table the API may write to."""
    dynamodb = boto3.client("dynamodb")
    return sum(dynamodb.scan(TableName=get_settings().resource(t), Select="COUNT")["Count"] for t in ("devices", "audit"))


@pytest.fixture
def admin(api):
    return api.token("admin")


def test_malformed_json_is_refused_with_its_position(api, admin):
    response = api.client.post(
        "/graphql", content=b'{"query": "mutation {', headers={"content-type": "application/json", "Authorization": f"Bearer {admin}"}
    )

    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "not valid JSON" in error["message"] and "column" in error["message"]
    assert _written() == 0


def test_a_body_over_the_limit_is_refused_before_parsing(api, admin):
    from sunflower.common.settings import get_settings

    padding = "#" + "x" * (get_settings().max_body_bytes + 100) + "\n"
    response = api.post({"query": padding + REGISTER}, admin)

    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert _written() == 0


def test_a_chunked_body_over_the_limit_is_refused_too(api, admin):
    def chunks():
        yield b'{"query": "'
        for _ in range(70):
            yield b"x" * 100_000
        yield b'"}'

    response = api.client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json", "Authorization": f"Bearer {admin}"}
    )

    assert response.status_code == 413


@pytest.fixture
def shallow_api(api, monkeypatch):
    """The same app with a depth limit of 2 (today's schema is not deep enough to reach 10)."""
    monkeypatch.setenv("SUNFLOWER_MAX_QUERY_DEPTH", "2")
    get_settings.cache_clear()
    yield api
    monkeypatch.delenv("SUNFLOWER_MAX_QUERY_DEPTH")
    get_settings.cache_clear()


def test_a_query_deeper_than_the_limit_is_refused(shallow_api, admin):
    result = shallow_api.post({"query": "{ devices { edges { node { id } } } }"}, admin).json()

    assert "exceeds maximum operation depth of 2" in result["errors"][0]["message"]
    assert result.get("data") is None


def test_too_many_aliases_are_refused_and_nothing_is_written(api, admin):
    many = "mutation {" + " ".join(
        f'a{i}: registerDevice(input: {{kind: GATE, name: "g{i}", siteId: "s"}}) {{ __typename }}' for i in range(16)
    ) + "}"

    result = api.post({"query": many}, admin).json()

    assert "aliases found" in result["errors"][0]["message"]
    assert _written() == 0


def test_too_many_tokens_are_refused(api, admin):
    huge = "{ " + " ".join("__typename" for _ in range(2100)) + " }"

    result = api.post({"query": huge}, admin).json()

    assert "token" in result["errors"][0]["message"].lower()


def test_an_unknown_field_is_named_and_nothing_is_written(api, admin):
    result = api.post({"query": 'mutation { registerDevice(input: {kind: GATE, name: "g", siteId: "s", colour: "red"}) { __typename } }'}, admin).json()

    assert "colour" in result["errors"][0]["message"]
    assert result["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert _written() == 0


def test_a_wrong_variable_type_is_named_and_nothing_is_written(api, admin):
    query = "mutation($input: RegisterDeviceInput!) { registerDevice(input: $input) { __typename } }"

    result = api.post({"query": query, "variables": {"input": {"kind": "GATE", "name": 42, "siteId": "s"}}}, admin).json()

    assert "name" in result["errors"][0]["message"] and "String" in result["errors"][0]["message"]
    assert _written() == 0


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Bearer not.a.jwt", "malformed"),
        ("Basic dXNlcjpwYXNz", "Bearer <token>"),
        ("Bearer ", "Bearer <token>"),
    ],
)
def test_a_bad_authorization_header_is_refused_not_ignored(api, header, reason):
    response = api.client.post("/graphql", json={"query": REGISTER}, headers={"Authorization": header})

    assert response.status_code == 401
    assert reason in response.json()["errors"][0]["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert _written() == 0


def test_an_unexpected_error_is_masked(api, admin, monkeypatch):
    from sunflower.container import services

    def explode(*args, **kwargs):
        raise RuntimeError("connection string postgres://secret@db")

    monkeypatch.setattr(services().devices, "page", explode)

    result = api.run("Devices", token=admin)

    assert result["errors"][0]["message"] == "Unexpected error."
    assert result["errors"][0]["extensions"]["code"] == "INTERNAL"
    assert "secret" not in json.dumps(result)
