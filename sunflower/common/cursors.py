"""Opaque, tamper-evident pagination cursors over DynamoDB's LastEvaluatedKey."""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sunflower.common.errors import ValidationFailed

T = TypeVar("T")
DEFAULT_PAGE = 20
MAX_PAGE = 100
_TAG_BYTES = 12


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a DynamoDB query: the items, each item's own key, and where the next page starts."""

    items: list[T]
    next_key: dict[str, Any] | None
    item_keys: list[dict[str, Any]] = field(default_factory=list)


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if first < 1 or first > MAX_PAGE:
        raise ValidationFailed.on("first", f"must be between 1 and {MAX_PAGE}")
    return first


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def _tag(self, payload: bytes, scope: str) -> bytes:
        return hmac.new(self._key, scope.encode() + b"\0" + payload, hashlib.sha256).digest()[:_TAG_BYTES]

    def encode(self, key: dict[str, Any] | None, scope: str = "") -> str | None:
        """A cursor valid only for the list named by `scope` (a cursor of one list is refused by another)."""
        if not key:
            return None
        payload = json.dumps(key, separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(self._tag(payload, scope) + payload).decode().rstrip("=")

    def decode(self, cursor: str | None, scope: str = "") -> dict[str, Any] | None:
        if not cursor:
            return None
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            tag, payload = raw[:_TAG_BYTES], raw[_TAG_BYTES:]
            if hmac.compare_digest(tag, self._tag(payload, scope)):
                key = json.loads(payload)
                if isinstance(key, dict):
                    return key
        except (ValueError, UnicodeDecodeError):
            pass
        raise ValidationFailed.on("after", "is not a cursor of this list; start from the first page")
