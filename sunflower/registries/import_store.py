"""The imports bucket: uploaded registry files under incoming/, import reports under reports/."""

from typing import IO
from urllib.parse import quote

from botocore.exceptions import ClientError

from sunflower.aws.clients import client
from sunflower.common.errors import InvalidState, NotFound
from sunflower.common.settings import get_settings

BUCKET = "imports"  # as infra/serverless.yml names it: {bucket prefix}-imports
INCOMING = "incoming/"
REPORTS = "reports/"


class ImportObjects:
    def __init__(self, bucket: str | None = None) -> None:
        self.bucket = bucket or get_settings().bucket(BUCKET)

    def fetch(self, key: str, *, etag: str, version_id: str | None, max_bytes: int) -> tuple[bytes, dict[str, str]]:
        """The bytes of exactly the upload an event announced, and its user metadata.

        NotFound if the object is gone; InvalidState if it was replaced meanwhile (the newer upload
        has an event of its own).
        """
        s3 = client("s3")
        kwargs: dict = {"Bucket": self.bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        elif etag:
            kwargs["IfMatch"] = f'"{etag}"'
        try:
            response = s3.get_object(**kwargs, Range=f"bytes=0-{max_bytes}")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "NoSuchVersion", "404"):
                raise NotFound("the file was deleted before it could be imported") from None
            if code in ("PreconditionFailed", "412"):
                raise InvalidState(
                    "the file was replaced by a newer upload before it could be imported; the newer one is imported on its own"
                ) from None
            if code == "InvalidRange":  # an empty object
                return b"", {}
            raise
        return response["Body"].read(), dict(response.get("Metadata") or {})

    def put(self, key: str, body: IO[bytes] | bytes, content_type: str) -> None:
        client("s3").put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def upload(self, key: str, body: bytes, metadata: dict[str, str] | None = None) -> str:
        """Put a file as an uploader does; returns its ETag."""
        response = client("s3").put_object(Bucket=self.bucket, Key=key, Body=body, Metadata=metadata or {})
        return response["ETag"].strip('"')

    def download_url(self, key: str, *, expires_s: int, file_name: str | None = None) -> str:
        params = {"Bucket": self.bucket, "Key": key}
        if file_name:
            # Header values are Latin-1: an ASCII name for old clients, the real one RFC 5987-encoded.
            fallback = file_name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
            params["ResponseContentDisposition"] = (
                f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"
            )
        return client("s3").generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)

    def upload_url(self, key: str, *, expires_s: int) -> str:
        return client("s3").generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_s
        )
