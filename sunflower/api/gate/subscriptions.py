"""The live gate feed over graphql-transport-ws: a community's access events, and alerts for the police."""

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable

import strawberry
from starlette.concurrency import run_in_threadpool
from strawberry import Info

from sunflower.api.gate.types import AccessEventType, GateFeedItem, WatchlistAlertType
from sunflower.api.permissions import roles
from sunflower.auth.principals import Role

# One DynamoDB query (two for the police) per subscriber per interval: a decision reaches the
# feed well within a second without hammering the table.
POLL_INTERVAL_S = 0.2
logger = logging.getLogger(__name__)
WATCHERS = (Role.PROPERTY_MANAGER, Role.COMMUNITY_STAFF, Role.POLICE, Role.ADMIN)


@strawberry.type
class GateSubscriptions:
    @strawberry.subscription(
        extensions=roles(*WATCHERS),
        description="A community's access events as they happen, for its property management and staff and the "
        "police; the police also get a WatchlistAlert right after the event of a watchlisted person. "
        "Authenticate in connection_init: {Authorization: \"Bearer <token>\", purpose: \"...\"}.",
    )
    async def access_events(self, info: Info, community_id: strawberry.ID) -> AsyncGenerator[GateFeedItem, None]:
        ctx = info.context
        # Refusals (who, why) happen here, before the stream starts: the client gets a protocol error.
        poll = await run_in_threadpool(ctx.services.gate.watch, ctx.require_principal(), str(community_id), ctx.purpose)
        return _feed(poll)


async def _feed(poll: Callable[[], tuple[list, list]]) -> AsyncGenerator[GateFeedItem, None]:
    failures = 0
    while True:
        try:
            events, alerts = await run_in_threadpool(poll)
        except Exception:
            failures += 1
            logger.warning("gate feed poll failed", exc_info=True)
            await asyncio.sleep(min(5.0, POLL_INTERVAL_S * 2**failures))
            continue
        failures = 0
        # An alert shares its event's time: the event comes first.
        feed = [(e.at, 0, AccessEventType.from_domain(e)) for e in events]
        feed += [(a.at, 1, WatchlistAlertType.from_domain(a)) for a in alerts]
        for _, _, item in sorted(feed, key=lambda entry: entry[:2]):
            yield item
        await asyncio.sleep(POLL_INTERVAL_S)
