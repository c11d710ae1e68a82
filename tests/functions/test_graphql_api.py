"""functions/graphql_api.py behind API Gateway HTTP API (payload 2.0), driven with real-shaped events."""

import base64
import json

from sunflower.auth import device_signature
from sunflower.common.clock import utc_now


def _token(local_cloud, *roles, user="u1"):
    from sunflower.auth.principals import Role
    from sunflower.local.identity import issue_token

    identity = local_cloud.identity
    return issue_token(identity.user_pool_id, identity.client_id, user=user, roles=[Role(r) for r in roles])


def _graphql_event(events, query: str, token: str | None = None, variables: dict | None = None) -> dict:
    event = events("apigw_http_v2_graphql.json")
    body = json.dumps({"query": query, "variables": variables or {}})
    event["body"] = body
    event["headers"]["content-length"] = str(len(body.encode()))
    if token:
        event["headers"]["authorization"] = f"Bearer {token}"
    return event


def test_a_signed_in_query_through_api_gateway_returns_the_viewer(local_cloud, lambda_context, events):
    from functions import graphql_api

    token = _token(local_cloud, "police", "official", user="officer-7")
    event = _graphql_event(events, "query Me { me { id roles } }", token)

    response = graphql_api.handler(event, lambda_context)

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"data": {"me": {"id": "officer-7", "roles": ["official", "police"]}}}


def test_a_forged_token_through_api_gateway_is_a_401_and_runs_nothing(local_cloud, lambda_context, events):
    from functions import graphql_api

    token = _token(local_cloud, "admin")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["cognito:groups"] = ["admin", "auditor"]
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    event = _graphql_event(events, 'mutation { registerDevice(input: {kind: GATE, name: "g", siteId: "s"}) { __typename } }',
                           f"{header}.{forged_payload}.{signature}")

    response = graphql_api.handler(event, lambda_context)

    assert response["statusCode"] == 401
    assert "signature" in json.loads(response["body"])["errors"][0]["message"]


def test_a_device_heartbeat_with_a_base64_body_through_api_gateway(local_cloud, lambda_context, events):
    from functions import graphql_api
    from sunflower.auth.principals import Principal, Role
    from sunflower.container import services
    from sunflower.devices.models import DeviceKind

    issued = services().devices.register(
        Principal("root", roles=frozenset({Role.ADMIN})), kind=DeviceKind.SIGNAL_CONTROLLER, name="信号机", site_id="c1"
    )
    body = json.dumps({"firmware": "ctl-5.2"}).encode()
    event = events("apigw_http_v2_graphql.json")
    event.update(rawPath="/devices/heartbeat", body=base64.b64encode(body).decode(), isBase64Encoded=True)
    event["requestContext"]["http"]["path"] = "/devices/heartbeat"
    event["headers"].update(
        device_signature.signed_headers(issued.device.id, issued.secret, "POST", "/devices/heartbeat", body, utc_now()),
        **{"content-length": str(len(body))},
    )

    response = graphql_api.handler(event, lambda_context)

    assert response["statusCode"] == 200, response["body"]
    assert json.loads(response["body"])["deviceId"] == issued.device.id
    assert services().devices.get_many(Principal("root", roles=frozenset({Role.ADMIN})), [issued.device.id])[
        issued.device.id
    ].firmware == "ctl-5.2"
