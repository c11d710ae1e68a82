"""Publish domain events to the district's EventBridge bus."""

import json
from collections.abc import Mapping
from typing import Any

from sunflower.aws.clients import client
from sunflower.common.settings import get_settings

SOURCE = "sunflower"


def publish(detail_type: str, detail: Mapping[str, Any], *, resources: list[str] | None = None) -> None:
    response = client("events").put_events(
        Entries=[
            {
                "EventBusName": get_settings().resource("bus"),
                "Source": SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(detail, ensure_ascii=False, default=str),
                "Resources": resources or [],
            }
        ]
    )
    if response.get("FailedEntryCount"):
        raise RuntimeError(f"EventBridge rejected {detail_type}: {response['Entries']}")
