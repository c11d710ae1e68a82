"""Objects in the district's buckets (named in infra/serverless.yml)."""

import base64
import hashlib

from sunflower.aws.clients import client
from sunflower.common.errors import NotFound
from sunflower.common.settings import get_settings


def bucket(name: str) -> str:
    return get_settings().bucket(name)


def put(bucket_name: str, key: str, body: bytes, content_type: str = "application/octet-stream") -> str:
    """Store an object with a SHA-256 checksum S3 verifies; returns the hex digest."""
    digest = hashlib.sha256(body).digest()
    client("s3").put_object(
        Bucket=bucket(bucket_name),
        Key=key,
        Body=body,
        ContentType=content_type,
        ChecksumSHA256=base64.b64encode(digest).decode(),
    )
    return digest.hex()


def get(bucket_name: str, key: str) -> bytes:
    s3 = client("s3")
    try:
        return s3.get_object(Bucket=bucket(bucket_name), Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise NotFound(f"no object {key} in {bucket_name}") from None


def delete(bucket_name: str, key: str) -> None:
    """Remove an object (in an unversioned bucket: for good). Deleting a missing key is not an error."""
    client("s3").delete_object(Bucket=bucket(bucket_name), Key=key)
