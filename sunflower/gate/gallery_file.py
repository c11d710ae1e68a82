"""The gallery file format, in pure Python: a community's templates as one checksummed blob.

    header   magic "SFGAL", format version, dimension, template count, sha256(payload)
    payload  u32 length + JSON list of person ids | i32 owner index per template | f32 rows

Rows are unit-length little-endian float32 templates, one after another, so adding or removing a
person is byte slicing. The API function (no numpy in its layer) updates galleries with this
module; the gate function maps the same bytes into a matrix (`sunflower.gate.face.Gallery`).
"""

from __future__ import annotations

import hashlib
import json
import struct
from array import array
from dataclasses import dataclass

MAGIC = b"SFGAL"
FORMAT_VERSION = 1
HEADER = struct.Struct("<5sHII32s")  # magic, version, dim, templates, sha256(payload)


@dataclass(frozen=True)
class GalleryFile:
    dim: int
    persons: tuple[str, ...]
    owner: array  # 'i': index into persons, one per template
    rows: bytes  # len(owner) * dim float32, little-endian

    @classmethod
    def empty(cls, dim: int) -> GalleryFile:
        return cls(dim, (), array("i"), b"")

    @classmethod
    def from_rows(cls, dim: int, person_ids: list[str], rows: bytes) -> GalleryFile:
        """A gallery of these rows, `person_ids[i]` owning row i."""
        persons = tuple(dict.fromkeys(person_ids))
        index = {p: i for i, p in enumerate(persons)}
        return cls(dim, persons, array("i", (index[p] for p in person_ids)), rows)

    def __len__(self) -> int:
        return len(self.owner)

    @property
    def row_bytes(self) -> int:
        return 4 * self.dim

    def person_ids(self) -> list[str]:
        return [self.persons[i] for i in self.owner]

    def template_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.persons, 0)
        for i in self.owner:
            counts[self.persons[i]] += 1
        return counts

    def without_person(self, person_id: str) -> GalleryFile:
        if person_id not in self.persons:
            return self
        ids = self.person_ids()
        keep = [i for i, p in enumerate(ids) if p != person_id]
        size = self.row_bytes
        rows = b"".join(self.rows[i * size:(i + 1) * size] for i in keep)
        return GalleryFile.from_rows(self.dim, [ids[i] for i in keep], rows)

    def with_templates(self, person_id: str, templates: list[bytes]) -> GalleryFile:
        """This gallery with `person_id`'s templates replaced by these (unit-length float32 rows)."""
        for row in templates:
            if len(row) != self.row_bytes:
                raise ValueError(f"a template has {len(row) // 4} dimensions, the gallery {self.dim}")
        base = self.without_person(person_id)
        ids = [*base.person_ids(), *[person_id] * len(templates)]
        return GalleryFile.from_rows(self.dim, ids, base.rows + b"".join(templates))

    def to_bytes(self) -> bytes:
        people = json.dumps(list(self.persons), ensure_ascii=False, separators=(",", ":")).encode()
        owner = array("i", self.owner)
        if owner.itemsize != 4:
            raise RuntimeError("this platform's C int is not 32 bits")
        if struct.pack("=I", 1) != struct.pack("<I", 1):
            owner.byteswap()
        payload = b"".join([struct.pack("<I", len(people)), people, owner.tobytes(), self.rows])
        return HEADER.pack(MAGIC, FORMAT_VERSION, self.dim, len(self.owner), hashlib.sha256(payload).digest()) + payload

    @classmethod
    def from_bytes(cls, data: bytes) -> GalleryFile:
        if len(data) < HEADER.size:
            raise ValueError("not a gallery: too short")
        magic, version, dim, count, digest = HEADER.unpack_from(data)
        if magic != MAGIC:
            raise ValueError("not a gallery")
        if version != FORMAT_VERSION:
            raise ValueError(f"gallery format {version}; this code reads {FORMAT_VERSION}")
        payload = memoryview(data)[HEADER.size:]
        if hashlib.sha256(payload).digest() != digest:
            raise ValueError("gallery bytes are corrupt (checksum mismatch)")
        (people_len,) = struct.unpack_from("<I", payload)
        offset = 4 + people_len
        persons = json.loads(bytes(payload[4:offset]))
        owner = array("i", bytes(payload[offset:offset + 4 * count]))
        if struct.pack("=I", 1) != struct.pack("<I", 1):
            owner.byteswap()
        offset += 4 * count
        rows = bytes(payload[offset:])
        if len(owner) != count or len(rows) != count * dim * 4:
            raise ValueError("gallery bytes have the wrong length")
        if not isinstance(persons, list) or any(not 0 <= i < len(persons) for i in owner):
            raise ValueError("gallery bytes have a bad person table")
        return cls(dim, tuple(persons), owner, rows)

