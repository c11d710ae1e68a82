"""Device request signatures cover method, path, timestamp, nonce and body hash."""

import hashlib
from datetime import UTC, datetime

import pytest

from sunflower.auth import device_signature as ds

SECRET = "s3cret-for-gate-01"
REQUEST = dict(method="POST", path="/gate/check", timestamp="1740816000", nonce="0123456789abcdef0123", body=b'{"a":1}')


def _args(**changes):
    values = {**REQUEST, **changes}
    return values["method"], values["path"], values["timestamp"], values["nonce"], values["body"]


def test_the_string_to_sign_is_method_path_timestamp_nonce_and_body_hash_one_per_line():
    lines = ds.string_to_sign(*_args()).decode().split("\n")
    assert lines == [
        "POST",
        "/gate/check",
        "1740816000",
        "0123456789abcdef0123",
        hashlib.sha256(b'{"a":1}').hexdigest(),
    ]


def test_the_method_is_signed_case_insensitively():
    assert ds.string_to_sign(*_args(method="post")) == ds.string_to_sign(*_args(method="POST"))


@pytest.mark.parametrize(
    "change",
    [
        {"method": "PUT"},
        {"path": "/gate/check/other"},
        {"path": "/gate/check?lane=3"},
        {"timestamp": "1740816001"},
        {"nonce": "0123456789abcdef0124"},
        {"body": b'{"a":2}'},
        {"body": b""},
    ],
    ids=lambda c: next(iter(c)),
)
def test_changing_any_signed_part_changes_the_string_and_breaks_the_match(change):
    # given a request signed as sent
    signature = ds.sign(SECRET, *_args())
    # when one part differs at the receiving end
    # then the string to sign differs and the signature no longer matches
    assert ds.string_to_sign(*_args(**change)) != ds.string_to_sign(*_args())
    assert not ds.matches(SECRET, signature, *_args(**change))


def test_an_untouched_request_matches_its_signature_in_either_hex_case():
    signature = ds.sign(SECRET, *_args())
    assert ds.matches(SECRET, signature, *_args())
    assert ds.matches(SECRET, signature.upper(), *_args())


def test_another_secret_does_not_match():
    assert not ds.matches("another-secret", ds.sign(SECRET, *_args()), *_args())


@pytest.mark.parametrize("signature", ["", "zz", "é" * 64, "\udcff" * 64, "0" * 64])
def test_a_malformed_signature_is_a_mismatch_not_a_crash(signature):
    assert ds.matches(SECRET, signature, *_args()) is False


def test_signed_headers_carry_everything_the_server_needs_to_verify():
    # given a device signing a request at a known moment
    now = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)
    headers = ds.signed_headers("dev-1", SECRET, "POST", "/gate/check", b"{}", now)
    # then every header is present, the timestamp is Unix seconds, and the signature verifies
    assert set(headers) == set(ds.HEADERS)
    assert headers[ds.DEVICE_ID] == "dev-1"
    assert headers[ds.TIMESTAMP] == str(int(now.timestamp()))
    assert 16 <= len(headers[ds.NONCE]) <= 64
    assert ds.matches(
        SECRET, headers[ds.SIGNATURE], "POST", "/gate/check", headers[ds.TIMESTAMP], headers[ds.NONCE], b"{}"
    )


def test_every_signed_request_gets_a_fresh_nonce():
    now = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)
    nonces = {ds.signed_headers("dev-1", SECRET, "POST", "/p", b"", now)[ds.NONCE] for _ in range(50)}
    assert len(nonces) == 50
