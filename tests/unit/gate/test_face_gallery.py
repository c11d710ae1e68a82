"""1:N search over a community's templates, and the accept/reject decision."""

import numpy as np
import pytest

from sunflower.gate.face.gallery import Gallery
from sunflower.gate.face.pipeline import decide
from sunflower.gate.gallery_file import FORMAT_VERSION


def _unit(rng, n, dim=512):
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _near(rng, vector, cosine):
    """A unit vector at the given cosine similarity to `vector`."""
    noise = rng.standard_normal(vector.shape).astype(np.float32)
    noise -= (noise @ vector) * vector
    noise /= np.linalg.norm(noise)
    return (cosine * vector + np.sqrt(1 - cosine**2) * noise).astype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(42)


def test_search_finds_the_person_and_the_margin_to_the_best_other_person(rng):
    # given three residents, one of them with two templates
    a1, a2, b, c = _unit(rng, 4)
    gallery = Gallery.build([("ana", a1), ("ana", a2), ("bo", b), ("chen", c)])
    # when a probe is 0.8 from ana's second template and 0.3 from bo
    probe = _near(rng, a2, 0.8)
    match = gallery.search(probe)
    # then ana wins with her best template's score, and the margin is to bo/chen, not to her other template
    assert match.person_id == "ana"
    assert match.score == pytest.approx(float(probe @ a2), abs=1e-5)
    others = {"bo": float(probe @ b), "chen": float(probe @ c)}
    runner = max(others, key=others.get)
    assert match.runner_up_id == runner
    assert match.margin == pytest.approx(match.score - others[runner], abs=1e-5)


def test_an_empty_gallery_finds_nobody_and_the_decision_says_so(rng):
    assert Gallery().search(_unit(rng, 1)[0]) is None
    decision = decide(_unit(rng, 1)[0], Gallery(), threshold=0.4)
    assert (decision.decision, decision.reason, decision.person_id) == ("reject", "EMPTY_GALLERY", None)


def test_a_one_person_gallery_has_no_runner_up(rng):
    a = _unit(rng, 1)[0]
    match = Gallery.build([("ana", a)]).search(_near(rng, a, 0.7))
    assert match.runner_up_id is None and match.runner_up_score is None
    assert match.margin == pytest.approx(match.score)


def test_decide_accepts_above_threshold_with_margin_and_names_the_person(rng):
    people = _unit(rng, 50)
    gallery = Gallery(people, [f"p{i}" for i in range(50)])
    decision = decide(_near(rng, people[7], 0.75), gallery, threshold=0.4, margin=0.08)
    assert decision.accepted and decision.person_id == "p7" and decision.reason == "MATCH"
    assert decision.score == pytest.approx(0.75, abs=1e-4)


def test_decide_rejects_below_threshold_without_naming_anyone(rng):
    people = _unit(rng, 50)
    gallery = Gallery(people, [f"p{i}" for i in range(50)])
    decision = decide(_near(rng, people[7], 0.3), gallery, threshold=0.4, margin=0.08)
    assert (decision.decision, decision.reason, decision.person_id) == ("reject", "NO_MATCH", None)
    assert decision.score == pytest.approx(0.3, abs=0.02)


def test_decide_rejects_when_two_people_are_equally_close(rng):
    # given two residents and a probe halfway between them (twins, or a poor photo)
    a, b = _unit(rng, 2)
    probe = (a + b) / np.linalg.norm(a + b)
    decision = decide(probe, Gallery.build([("ana", a), ("bo", b)]), threshold=0.4, margin=0.08)
    # then the gate opens for neither
    assert (decision.decision, decision.reason) == ("reject", "AMBIGUOUS")
    assert decision.margin == pytest.approx(0.0, abs=1e-5)


def test_two_stage_search_agrees_with_exact_search_on_a_large_gallery(rng):
    # given 20k templates (above the exact-search cut-off) and probes at realistic genuine scores
    people = _unit(rng, 20_000)
    gallery = Gallery(people, [f"p{i // 2}" for i in range(20_000)])  # two templates each
    targets = rng.choice(20_000, 40, replace=False)
    for i, cosine in zip(targets, np.linspace(0.35, 0.9, 40)):
        probe = _near(rng, people[i], float(cosine))
        fast, exact = gallery.search(probe), gallery.search(probe, exact=True)
        # then the two-stage search finds the same person with the same exact score
        assert fast.person_id == exact.person_id == f"p{i // 2}"
        assert fast.score == pytest.approx(exact.score, abs=1e-6)
        # and a far-away runner-up may be missed, which can only overstate the margin
        assert fast.margin >= exact.margin - 1e-6


def test_two_stage_search_sees_a_close_runner_up_and_refuses_as_exact_search_does(rng):
    # given 20k residents, two of whom look alike (cosine 0.8 to each other)
    people = _unit(rng, 20_000)
    people[11] = _near(rng, people[10], 0.8)
    gallery = Gallery(people, [f"p{i}" for i in range(20_000)])
    # when the visitor is p10 at 0.7, and so about 0.6 from p11
    probe = _near(rng, people[10], 0.7)
    fast, exact = gallery.search(probe), gallery.search(probe, exact=True)
    # then both searches name p11 as runner-up with the same margin
    assert fast == exact
    assert fast.runner_up_id == "p11"
    assert decide(probe, gallery, threshold=0.4, margin=0.08).decision == (
        "accept" if exact.margin >= 0.08 else "reject")


def test_templates_are_normalised_and_bad_inputs_refused(rng):
    g = Gallery.build([("ana", np.full(512, 3.0, np.float32))])
    assert np.linalg.norm(g.templates[0]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        g.search(np.ones(128, np.float32))
    with pytest.raises(ValueError):
        Gallery.build([("ana", np.zeros(512, np.float32))])
    with pytest.raises(ValueError):
        Gallery(_unit(rng, 2), ["only-one-id"])


def test_adding_and_removing_people_returns_new_galleries(rng):
    a, b, c = _unit(rng, 3)
    g = Gallery.build([("ana", a)]).with_templates("bo", [b, c])
    assert len(g) == 3 and g.person_count == 2 and g.person_ids() == ["ana", "bo", "bo"]
    without = g.without_person("bo")
    assert without.person_ids() == ["ana"] and len(g) == 3


def test_bytes_round_trip_keeps_templates_people_and_results(rng):
    people = _unit(rng, 300)
    ids = [f"人{i // 3}" for i in range(300)]  # non-ASCII ids survive
    gallery = Gallery(people, ids)
    restored = Gallery.from_bytes(gallery.to_bytes())
    assert restored.person_ids() == ids
    np.testing.assert_array_equal(restored.templates, gallery.templates)
    probe = _near(rng, people[100], 0.6)
    assert restored.search(probe) == gallery.search(probe)


def test_bytes_from_another_version_or_corrupted_are_refused(rng):
    data = bytearray(Gallery(_unit(rng, 5), list("abcde")).to_bytes())
    other_version = bytearray(data)
    other_version[5:7] = (FORMAT_VERSION + 1).to_bytes(2, "little")
    with pytest.raises(ValueError, match="format"):
        Gallery.from_bytes(bytes(other_version))
    corrupted = bytearray(data)
    corrupted[-1] ^= 0xFF
    with pytest.raises(ValueError, match="corrupt"):
        Gallery.from_bytes(bytes(corrupted))
    with pytest.raises(ValueError):
        Gallery.from_bytes(b"not a gallery at all, no")
