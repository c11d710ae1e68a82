"""Each community's gallery: a versioned, envelope-encrypted object in S3 named by a pointer item.

Writers (enrollment, withdrawal) read the current version, write the next one under a fresh key,
then move the pointer only if nobody else moved it first (optimistic concurrency), and delete the
version they replaced: the bucket is not versioned, so a withdrawn resident's templates are gone
from S3 once the pointer moves. Readers (the gate function) keep each community's gallery in
memory and ask for the pointer at most every `refresh_s`: a change reaches every warm container
within that interval.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sunflower.aws import envelope, storage
from sunflower.common.errors import InvalidState, NotFound
from sunflower.common.ids import new_id
from sunflower.gate.gallery_file import GalleryFile
from sunflower.gate.repository import GalleryPointers

if TYPE_CHECKING:
    from sunflower.gate.face import Gallery

BUCKET = "galleries"
_ATTEMPTS = 8


def _context(community_id: str, version: int) -> dict[str, str]:
    return {"purpose": "face-gallery", "community_id": community_id, "version": str(version)}


class GalleryStore:
    def __init__(self, pointers: GalleryPointers, clock: Callable[[], datetime], dim: int) -> None:
        self.pointers = pointers
        self._clock = clock
        self.dim = dim

    def version(self, community_id: str) -> int:
        current = self.pointers.current(community_id)
        return current[0] if current else 0

    def read(self, community_id: str, *, consistent: bool = False) -> tuple[int, bytes | None]:
        """(version, plaintext gallery bytes); (0, None) before anyone is enrolled."""
        version, _, data = self._read(community_id, consistent=consistent)
        return version, data

    def _read(self, community_id: str, *, consistent: bool) -> tuple[int, str | None, bytes | None]:
        for _ in range(_ATTEMPTS):
            current = self.pointers.current(community_id, consistent=consistent)
            if current is None:
                return 0, None, None
            version, key = current
            try:
                sealed = storage.get(BUCKET, key)
            except NotFound:
                consistent = True  # replaced and deleted between the two reads: look again
                continue
            return version, key, envelope.open_sealed(sealed, _context(community_id, version))
        raise InvalidState(f"the gallery of {community_id} keeps changing; try again")

    def load(self, community_id: str, *, consistent: bool = True) -> tuple[int, GalleryFile]:
        version, data = self.read(community_id, consistent=consistent)
        return version, self._parse(data)

    def _parse(self, data: bytes | None) -> GalleryFile:
        return GalleryFile.from_bytes(data) if data else GalleryFile.empty(self.dim)

    def update(self, community_id: str, change: Callable[[GalleryFile], GalleryFile]) -> int:
        """Apply `change` to the current gallery and publish the result; the new version."""
        for _ in range(_ATTEMPTS):
            version, old_key, data = self._read(community_id, consistent=True)
            gallery = self._parse(data)
            changed = change(gallery)
            if changed is gallery:
                return version
            new_version = version + 1
            key = f"galleries/{community_id}/{new_version:010d}-{new_id()}.sfgal"
            storage.put(BUCKET, key, envelope.seal(changed.to_bytes(), _context(community_id, new_version)))
            if self.pointers.swap(community_id, version, new_version, key, self._clock()):
                if old_key:
                    storage.delete(BUCKET, old_key)
                return new_version
            storage.delete(BUCKET, key)  # lost the race: ours was never visible
        raise InvalidState(f"the gallery of {community_id} kept changing while it was updated; try again")


@dataclass
class _Cached:
    version: int
    gallery: Gallery
    checked: float


class GalleryCache:
    """Warm galleries of the communities this container serves (the gate function's hot path)."""

    def __init__(self, store: GalleryStore, refresh_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._now = monotonic
        self._cached: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def get(self, community_id: str) -> tuple[int, Gallery]:
        entry = self._cached.get(community_id)
        now = self._now()
        if entry and now - entry.checked < self._refresh_s:
            return entry.version, entry.gallery
        with self._lock:
            entry = self._cached.get(community_id)
            if entry and now - entry.checked < self._refresh_s:
                return entry.version, entry.gallery
            version = self._store.version(community_id)
            if entry is None or entry.version != version:
                version, data = self._store.read(community_id)
                entry = _Cached(version, _to_matrix(data, self._store.dim), now)
                self._cached[community_id] = entry
            entry.checked = now
            return entry.version, entry.gallery

    def forget(self, community_id: str) -> None:
        self._cached.pop(community_id, None)


def _to_matrix(data: bytes | None, dim: int) -> Gallery:
    from sunflower.gate.face import Gallery  # numpy: only where checks run

    return (Gallery.from_bytes(data) if data else Gallery(dim=dim)).warm()
