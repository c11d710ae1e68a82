"""The gallery file format without numpy: what the API function edits is what the gate function reads."""

import struct

import pytest

from sunflower.gate.gallery_file import GalleryFile

DIM = 4


def row(*values: float) -> bytes:
    norm = sum(v * v for v in values) ** 0.5
    return struct.pack(f"<{DIM}f", *(v / norm for v in values))


def test_adding_replacing_and_removing_people_keeps_every_other_row_in_place():
    gallery = GalleryFile.empty(DIM).with_templates("ann", [row(1, 0, 0, 0), row(1, 1, 0, 0)])
    gallery = gallery.with_templates("bo", [row(0, 0, 1, 0)])

    replaced = gallery.with_templates("ann", [row(0, 0, 0, 1)])
    removed = replaced.without_person("bo")

    assert replaced.template_counts() == {"bo": 1, "ann": 1}
    assert replaced.rows == row(0, 0, 1, 0) + row(0, 0, 0, 1)
    assert removed.person_ids() == ["ann"] and removed.rows == row(0, 0, 0, 1)
    assert removed.without_person("nobody") is removed


def test_bytes_round_trip_and_any_damage_is_refused():
    gallery = GalleryFile.empty(DIM).with_templates("张伟", [row(1, 2, 3, 4)]).with_templates("bo", [row(4, 3, 2, 1)])
    data = gallery.to_bytes()

    assert GalleryFile.from_bytes(data) == gallery
    flipped = bytearray(data)
    flipped[-1] ^= 1
    for broken, message in [(bytes(flipped), "checksum"), (data[:20], "too short"), (b"XXXXX" + data[5:], "not a gallery")]:
        with pytest.raises(ValueError, match=message):
            GalleryFile.from_bytes(broken)


def test_a_template_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="dimensions"):
        GalleryFile.empty(DIM).with_templates("ann", [b"\x00" * 12])


def test_the_gate_functions_matrix_reads_the_same_bytes():
    np = pytest.importorskip("numpy")
    from sunflower.gate.face import Gallery

    gallery = GalleryFile.empty(DIM).with_templates("ann", [row(1, 0, 0, 0), row(0.9, 0.1, 0, 0)])
    gallery = gallery.with_templates("bo", [row(0, 1, 0, 0)])

    matrix = Gallery.from_bytes(gallery.to_bytes())

    assert matrix.person_ids() == gallery.person_ids()
    assert matrix.search(np.array([0, 1, 0, 0], np.float32)).person_id == "bo"
    assert GalleryFile.from_bytes(matrix.to_bytes()) == gallery
