"""Device request signatures: HMAC-SHA256 over method, path, timestamp, nonce and body hash."""

import hashlib
import hmac
import secrets
from datetime import datetime

DEVICE_ID = "x-device-id"
TIMESTAMP = "x-sunflower-timestamp"
NONCE = "x-sunflower-nonce"
SIGNATURE = "x-sunflower-signature"
HEADERS = (DEVICE_ID, TIMESTAMP, NONCE, SIGNATURE)


def string_to_sign(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    body_hash = hashlib.sha256(body).hexdigest()
    return "\n".join([method.upper(), path, timestamp, nonce, body_hash]).encode()


def sign(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    return hmac.new(secret.encode(), string_to_sign(method, path, timestamp, nonce, body), hashlib.sha256).hexdigest()


def matches(secret: str, signature: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bool:
    # Bytes, not str: compare_digest raises TypeError on a non-ASCII str, and headers are untrusted input.
    expected = sign(secret, method, path, timestamp, nonce, body).encode()
    return hmac.compare_digest(expected, signature.lower().encode("utf-8", "replace"))


def signed_headers(device_id: str, secret: str, method: str, path: str, body: bytes, now: datetime) -> dict[str, str]:
    """What a device (or the CLI, or a test) sends."""
    timestamp = str(int(now.timestamp()))
    nonce = secrets.token_hex(16)
    return {
        DEVICE_ID: device_id,
        TIMESTAMP: timestamp,
        NONCE: nonce,
        SIGNATURE: sign(secret, method, path, timestamp, nonce, body),
    }
