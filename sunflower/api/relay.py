"""Relay connections over DynamoDB pages, with opaque cursors bound to the list that issued them."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from strawberry import Info, relay

from sunflower.common.cursors import Page, page_size

N = TypeVar("N")


@dataclass(frozen=True)
class PageRequest:
    limit: int
    start: dict[str, Any] | None
    scope: str


def page_request(info: Info, scope: str, first: int | None, after: str | None) -> PageRequest:
    """Validate `first` and `after` for the list named `scope` (its field and filter)."""
    return PageRequest(page_size(first), info.context.services.cursors.decode(after, scope), scope)


def connection(info: Info, request: PageRequest, page: Page[Any], convert: Callable[[Any], N]) -> relay.Connection[N]:
    codec = info.context.services.cursors
    edges = [
        relay.Edge(node=convert(item), cursor=codec.encode(key, request.scope) or "")
        for item, key in zip(page.items, page.item_keys, strict=True)
    ]
    end = codec.encode(page.next_key, request.scope) if page.next_key else (edges[-1].cursor if edges else None)
    return relay.Connection(
        edges=edges,
        page_info=relay.PageInfo(
            has_next_page=page.next_key is not None,
            has_previous_page=False,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=end,
        ),
    )
