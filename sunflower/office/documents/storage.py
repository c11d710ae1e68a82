"""The office bucket: documents' attachments and meetings' materials, reached through presigned URLs."""

from dataclasses import dataclass
from urllib.parse import quote

from botocore.exceptions import ClientError

from sunflower.aws.clients import client
from sunflower.common.settings import get_settings

BUCKET = "office"  # as infra/serverless.yml names it: {bucket prefix}-office


@dataclass(frozen=True)
class StoredObject:
    size: int
    content_type: str


class OfficeFiles:
    def __init__(self, bucket: str | None = None) -> None:
        self.bucket = bucket or get_settings().bucket(BUCKET)

    def upload_url(self, key: str, *, content_type: str, size: int, expires_s: int) -> tuple[str, dict[str, str]]:
        """A presigned PUT that only takes exactly `size` bytes of `content_type` (both headers are signed)."""
        url = client("s3").generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type, "ContentLength": size},
            ExpiresIn=expires_s,
        )
        return url, {"Content-Type": content_type, "Content-Length": str(size)}

    def download_url(self, key: str, *, file_name: str, content_type: str, expires_s: int) -> str:
        # Header values are Latin-1: an ASCII name for old clients, the real one RFC 5987-encoded.
        fallback = file_name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
        disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"
        return client("s3").generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key, "ResponseContentDisposition": disposition,
                    "ResponseContentType": content_type},
            ExpiresIn=expires_s,
        )

    def head(self, key: str) -> StoredObject | None:
        try:
            response = client("s3").head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return StoredObject(int(response["ContentLength"]), response.get("ContentType", ""))

    def delete(self, key: str) -> None:
        client("s3").delete_object(Bucket=self.bucket, Key=key)
