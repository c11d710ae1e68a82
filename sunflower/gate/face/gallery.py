"""A community's enrolled faces: L2-normalised templates in one float32 matrix, 1:N search.

Several templates per person (enrolment photos taken on different days help). Search returns the
best person, their best template's cosine similarity, and the margin to the best *other* person.

Large galleries are searched in two stages: a 512-bit sign code per template (64 bytes, stored
bit-plane by bit-plane so each of the 8 XOR+popcount passes is one contiguous vectorised sweep)
ranks every template by Hamming distance, which tracks the angle between unit vectors; the
`candidates` nearest are then rescored exactly in float32. The exact score of the winner is what
the decision uses, so the two stages can only ever miss a match, never invent one; at 100k
templates the prefilter reads 6.4 MB instead of 205 MB. What it can miss are templates far from the
probe: among 100k unrelated faces the best *other* person at cosine ~0.2 may fall outside the
candidates, so the reported runner-up (and margin) is exact when the runner-up is close (cosine
above ~0.35, the only case in which the margin rule can refuse) and otherwise may be a lower-scoring
person: the margin can then be overstated, never understated. Pass exact=True to search everything.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from sunflower.gate.gallery_file import GalleryFile


@dataclass(frozen=True)
class Match:
    person_id: str
    score: float  # cosine similarity of the best template of this person
    runner_up_id: str | None  # best other person, if the gallery has one
    runner_up_score: float | None
    margin: float  # score - runner_up_score (score itself when there is no other person)


class Gallery:
    """Templates (N x D float32, unit rows) and, for each row, its person's id."""

    # Below this many templates exact search is already fast (1k: ~0.1 ms) and is used as is.
    EXACT_UP_TO = 8192

    def __init__(self, templates: np.ndarray | None = None, person_ids: Sequence[str] = (), *, dim: int = 512,
                 candidates: int = 512, normalise: bool = True) -> None:
        if templates is None:
            templates = np.zeros((0, dim), np.float32)
        templates = np.asarray(templates, dtype=np.float32)
        if templates.ndim != 2:
            raise ValueError("templates must be a 2-D array")
        if not np.isfinite(templates).all():
            raise ValueError("a template is not finite")
        if len(person_ids) != templates.shape[0]:
            raise ValueError("one person id per template")
        if normalise:
            norms = np.linalg.norm(templates, axis=1, keepdims=True)
            if templates.shape[0] and not np.all(norms > 0):
                raise ValueError("a template is all zeros")
            templates = templates / np.where(norms > 0, norms, 1)
        self.templates = np.ascontiguousarray(templates, dtype=np.float32)
        self.dim = self.templates.shape[1]
        self.candidates = candidates
        self.persons: list[str] = list(dict.fromkeys(person_ids))
        index = {p: i for i, p in enumerate(self.persons)}
        self.owner = np.fromiter((index[p] for p in person_ids), dtype=np.int32, count=len(person_ids))
        self.max_per_person = int(np.bincount(self.owner).max()) if len(self.owner) else 0
        self._planes: np.ndarray | None = None
        self._work: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    # -- building -------------------------------------------------------------------------------

    @classmethod
    def build(cls, entries: Iterable[tuple[str, np.ndarray]], *, dim: int = 512) -> Gallery:
        entries = list(entries)
        if not entries:
            return cls(dim=dim)
        ids = [p for p, _ in entries]
        return cls(np.stack([np.asarray(v, np.float32).reshape(-1) for _, v in entries]), ids)

    def with_templates(self, person_id: str, embeddings: Iterable[np.ndarray]) -> Gallery:
        """A new gallery with these templates added for person_id."""
        new = [np.asarray(e, np.float32).reshape(1, -1) for e in embeddings]
        if not new:
            return self
        templates = np.concatenate([self.templates, *new])
        return Gallery(templates, [*self.person_ids(), *[person_id] * len(new)], candidates=self.candidates)

    def without_person(self, person_id: str) -> Gallery:
        ids = self.person_ids()
        keep = [i for i, p in enumerate(ids) if p != person_id]
        return Gallery(self.templates[keep], [ids[i] for i in keep], dim=self.dim, candidates=self.candidates)

    def person_ids(self) -> list[str]:
        """The person id of each template, row by row."""
        return [self.persons[i] for i in self.owner]

    def __len__(self) -> int:
        return self.templates.shape[0]

    @property
    def person_count(self) -> int:
        return len(self.persons)

    # -- search ---------------------------------------------------------------------------------

    def search(self, query: np.ndarray, *, exact: bool | None = None) -> Match | None:
        """The best person for a query embedding, or None for an empty gallery."""
        n = len(self)
        if n == 0:
            return None
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise ValueError(f"query has {q.shape[0]} dimensions, the gallery {self.dim}")
        norm = float(np.linalg.norm(q))
        if not np.isfinite(norm) or norm == 0:
            raise ValueError("query embedding is zero or not finite")
        q = q / norm
        if exact is None:
            exact = n <= self.EXACT_UP_TO
        if exact or n <= self.candidates:
            rows = None
            scores = self.templates @ q
        else:
            rows = self._prefilter(q, self.candidates)
            scores = self.templates[rows] @ q
        return self._best_two(scores, rows)

    def _best_two(self, scores: np.ndarray, rows: np.ndarray | None) -> Match:
        # The best other person is among the top (max templates per person + 1) rows.
        k = min(len(scores), self.max_per_person + 1)
        top = np.argpartition(scores, len(scores) - k)[len(scores) - k:] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        owners = self.owner[top if rows is None else rows[top]]
        best_owner, best_score = int(owners[0]), float(scores[top[0]])
        runner_up_id = runner_up_score = None
        for j in range(1, len(top)):
            if owners[j] != best_owner:
                runner_up_id, runner_up_score = self.persons[int(owners[j])], float(scores[top[j]])
                break
        margin = best_score - runner_up_score if runner_up_score is not None else best_score
        return Match(self.persons[best_owner], best_score, runner_up_id, runner_up_score, margin)

    def _prefilter(self, q: np.ndarray, k: int) -> np.ndarray:
        """Rows of the templates nearest in Hamming distance (at least k of them, ties kept)."""
        planes = self._sign_planes()
        word, count, distance = self._buffers()
        qcode = np.packbits(q > 0).view(np.uint64)
        distance.fill(0)
        for j in range(planes.shape[0]):
            np.bitwise_xor(planes[j], qcode[j], out=word)
            np.bitwise_count(word, out=count)
            np.add(distance, count, out=distance)
        # Distances are small integers: a histogram finds the cut-off in one pass, cheaper than
        # argpartition, and keeps every template tied at the cut-off.
        histogram = np.bincount(distance, minlength=self.dim + 1)
        cutoff = int(np.searchsorted(np.cumsum(histogram), k))
        return np.flatnonzero(distance <= cutoff)

    def _buffers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Reused across searches: fresh 100k-element arrays each time cost page faults at p99.
        # One gallery object serves one thread (a Lambda container handles one request at a time).
        if self._work is None:
            n = len(self)
            self._work = (np.empty(n, np.uint64), np.empty(n, np.uint8), np.empty(n, np.uint16))
        return self._work

    def _sign_planes(self) -> np.ndarray:
        if self._planes is None:
            if self.dim % 64:
                raise ValueError("two-stage search needs a dimension that is a multiple of 64")
            codes = np.packbits(self.templates > 0, axis=1).view(np.uint64)  # N x dim/64
            self._planes = np.ascontiguousarray(codes.T)
        return self._planes

    def warm(self) -> Gallery:
        """Build the search codes now rather than on the first query (call once per container)."""
        if len(self) > self.EXACT_UP_TO:
            self._sign_planes()
            self._buffers()
        return self

    # -- bytes ---------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The gallery file format (sunflower.gate.gallery_file): versioned, checksummed."""
        return GalleryFile(self.dim, tuple(self.persons), array("i", self.owner.tolist()),
                           self.templates.astype("<f4").tobytes()).to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Gallery:
        stored = GalleryFile.from_bytes(data)
        templates = np.frombuffer(stored.rows, dtype="<f4").reshape(len(stored), stored.dim)
        return cls(templates.copy(), stored.person_ids(), dim=stored.dim, normalise=False)  # stored normalised
