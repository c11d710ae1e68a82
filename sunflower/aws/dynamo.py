"""The pynamodb base every repository's private model derives its Meta from."""

from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, TypeVar

from pynamodb.attributes import UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.pagination import ResultIterator

from sunflower.common.cursors import Page
from sunflower.common.settings import get_settings

T = TypeVar("T")


def table_meta(name: str) -> type:
    """A pynamodb Meta for the table infra/serverless.yml declares under `name`."""
    settings = get_settings()
    return type(
        "Meta",
        (),
        {"table_name": settings.resource(name), "region": settings.region, "max_retry_attempts": 3},
    )


def page_of(result: ResultIterator, convert: Callable[[Any], T], key_attributes: Iterable[str]) -> Page[T]:
    """Drain a limited pynamodb query into a Page whose every item knows its own resume key."""
    attributes = tuple(key_attributes)
    items, keys = [], []
    for record in result:
        items.append(convert(record))
        raw = record.serialize()
        keys.append({name: raw[name] for name in attributes})
    next_key = result.last_evaluated_key
    return Page(items, dict(next_key) if next_key else None, keys)


@cache
def connection() -> Connection:
    """The connection transactions use: building a botocore client costs ~0.1 s, so once per container."""
    return Connection(region=get_settings().region)


def overloaded_index(name: str) -> GlobalSecondaryIndex:
    """A GSI `name` keyed on `{name}pk`/`{name}sk`, shared by every kind of item of a single table."""
    attrs = {
        "Meta": type("Meta", (), {"index_name": name, "projection": AllProjection()}),
        f"{name}pk": UnicodeAttribute(hash_key=True),
        f"{name}sk": UnicodeAttribute(range_key=True),
    }
    return type(f"_{name}", (GlobalSecondaryIndex,), attrs)()
