"""Pagination cursors: opaque, tamper-evident, and page sizes within bounds."""

import base64
import hashlib
import hmac
import json

import pytest

from sunflower.common.cursors import DEFAULT_PAGE, MAX_PAGE, CursorCodec, page_size
from sunflower.common.errors import ValidationFailed

KEY = {"pk": {"S": "DEVICE#01J0000000000000000000000"}, "sk": {"S": "DEVICE"}, "gsi1sk": {"S": "gate#01J0"}}


def _fails_on_after(codec: CursorCodec, cursor: str) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        codec.decode(cursor)
    assert [p.field for p in caught.value.problems] == ["after"]
    return caught.value


def test_a_cursor_decodes_to_the_key_it_was_made_from():
    # given a codec and a DynamoDB LastEvaluatedKey
    codec = CursorCodec("secret-1")
    # when the key is encoded and decoded again
    cursor = codec.encode(KEY)
    # then the same key comes back, and the cursor does not show it in plain text
    assert codec.decode(cursor) == KEY
    assert "DEVICE#" not in cursor
    assert "=" not in cursor  # no padding: safe in URLs and GraphQL strings


def test_no_key_means_no_cursor_and_no_cursor_means_the_first_page():
    codec = CursorCodec("secret-1")
    assert codec.encode(None) is None
    assert codec.encode({}) is None
    assert codec.decode(None) is None
    assert codec.decode("") is None


def test_a_cursor_with_an_edited_payload_is_rejected():
    # given a valid cursor whose payload a client rewrites to point elsewhere
    codec = CursorCodec("secret-1")
    raw = base64.urlsafe_b64decode(codec.encode(KEY) + "==")
    forged_payload = json.dumps({**KEY, "pk": {"S": "DEVICE#someone-else"}}, separators=(",", ":")).encode()
    forged = base64.urlsafe_b64encode(raw[:12] + forged_payload).decode().rstrip("=")
    # when it is decoded, then it fails naming the `after` argument
    error = _fails_on_after(codec, forged)
    assert "first page" in error.message


def test_a_cursor_with_a_flipped_bit_is_rejected():
    codec = CursorCodec("secret-1")
    raw = bytearray(base64.urlsafe_b64decode(codec.encode(KEY) + "=="))
    raw[-3] ^= 0x01
    _fails_on_after(codec, base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("="))


def test_a_cursor_issued_under_another_secret_is_rejected():
    # given a cursor from a deployment with a different cursor secret
    cursor = CursorCodec("other-secret").encode(KEY)
    # then this deployment does not accept it
    _fails_on_after(CursorCodec("secret-1"), cursor)


@pytest.mark.parametrize(
    "garbage",
    ["x", "not a cursor!", "%%%%", "AAAA", "é-unicode", base64.urlsafe_b64encode(b"short").decode(), "a" * 500],
)
def test_garbage_is_rejected_naming_after(garbage):
    _fails_on_after(CursorCodec("secret-1"), garbage)


def test_a_correctly_tagged_payload_that_is_not_an_object_is_rejected():
    # given a cursor correctly tagged (12-byte HMAC-SHA256) over a JSON list, not a key
    codec = CursorCodec("secret-1")
    payload = b"[1,2,3]"
    tag = hmac.new(b"secret-1", payload, hashlib.sha256).digest()[:12]
    cursor = base64.urlsafe_b64encode(tag + payload).decode().rstrip("=")
    _fails_on_after(codec, cursor)


def test_page_size_defaults_to_twenty():
    assert page_size(None) == DEFAULT_PAGE == 20


@pytest.mark.parametrize("first", [1, 20, 99, 100])
def test_page_sizes_from_one_to_a_hundred_are_taken_as_given(first):
    assert page_size(first) == first


@pytest.mark.parametrize("first", [0, -1, MAX_PAGE + 1, 10_000])
def test_page_sizes_out_of_bounds_fail_naming_first(first):
    with pytest.raises(ValidationFailed) as caught:
        page_size(first)
    assert [p.field for p in caught.value.problems] == ["first"]
    assert "100" in caught.value.message


def test_a_cursor_of_one_list_is_refused_by_another():
    codec = CursorCodec("secret-1")
    cursor = codec.encode({"pk": {"S": "DEVICE#1"}}, scope="devices:None")

    assert codec.decode(cursor, scope="devices:None") == {"pk": {"S": "DEVICE#1"}}
    with pytest.raises(ValidationFailed) as refused:
        codec.decode(cursor, scope="auditEntries:AuditFilter()")
    assert refused.value.problems[0].field == "after"
