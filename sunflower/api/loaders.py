"""Dataloaders, built per request so nothing leaks between callers and lists cost O(1) round trips."""

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from strawberry.dataloader import DataLoader

from sunflower.auth.principals import Principal
from sunflower.common.errors import Unauthenticated
from sunflower.container import Services

K = TypeVar("K")


def _batched(fetch: Callable[[list[K]], dict[K, Any]]) -> DataLoader[K, Any]:
    async def load(keys: Sequence[K]) -> list[Any]:
        found = await run_in_threadpool(fetch, list(keys))
        return [found.get(key) for key in keys]

    return DataLoader(load_fn=load)


class Loaders:
    def __init__(self, services: Services, principal: Principal | None, purpose: str = "") -> None:
        self._services = services
        self._principal = principal
        self._purpose = purpose
        self._built: dict[str, DataLoader] = {}

    def loader(self, name: str, fetch: Callable[[Principal, list], dict]) -> DataLoader:
        """This request's loader `name`, batching calls of fetch(viewer, keys) -> {key: value}."""
        if name not in self._built:
            principal = self._principal
            if principal is None:
                raise Unauthenticated("Sign in first: this needs a bearer token")
            self._built[name] = _batched(lambda keys: fetch(principal, keys))
        return self._built[name]

    @property
    def device_by_id(self) -> DataLoader[str, Any]:
        return self.loader("device_by_id", self._services.devices.get_many)

    @property
    def audit_entry_by_seq(self) -> DataLoader[int, Any]:
        return self.loader("audit_entry_by_seq", self._services.audit.get_many)

    @property
    def person_by_id(self) -> DataLoader[str, Any]:
        """PersonViews the viewer may see (masked as their role requires); each read is audited."""
        registries, purpose = self._services.registries, self._purpose
        return self.loader("person_by_id", lambda p, ids: registries.persons(p, ids, purpose))

    @property
    def household_by_id(self) -> DataLoader[str, Any]:
        return self.loader("household_by_id", self._services.registries.households)

    @property
    def entity_by_id(self) -> DataLoader[str, Any]:
        return self.loader("entity_by_id", self._services.registries.entities)

    @property
    def credit_profile(self) -> DataLoader[tuple, Any]:
        """Keyed by (SubjectType, id); missing when the viewer may not see the profile."""
        registries, purpose = self._services.registries, self._purpose
        return self.loader("credit_profile", lambda p, keys: registries.credit_profiles(p, keys, purpose))
