"""Relay connections over DynamoDB pages, with opaque tamper-evident cursors."""

from collections.abc import Callable
from typing import Any, TypeVar

from strawberry import relay

from sunflower.common.cursors import CursorCodec, Page

N = TypeVar("N")


def connection(page: Page[Any], convert: Callable[[Any], N], cursors: CursorCodec) -> relay.Connection[N]:
    edges = [
        relay.Edge(node=convert(item), cursor=cursors.encode(key) or "")
        for item, key in zip(page.items, page.item_keys, strict=True)
    ]
    return relay.Connection(
        edges=edges,
        page_info=relay.PageInfo(
            has_next_page=page.next_key is not None,
            has_previous_page=False,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=cursors.encode(page.next_key) if page.next_key else (edges[-1].cursor if edges else None),
        ),
    )
