"""One place for configuration. Services receive plain values from here, never the object."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUNFLOWER_", extra="ignore")

    # Every table, bucket and queue is named f"{resource_prefix}-{name}" (see infra/serverless.yml).
    resource_prefix: str = "sunflower-local"
    # Bucket names are global in S3: deployments may give them a prefix of their own.
    bucket_prefix: str = ""
    region: str = Field(default="ap-east-1", validation_alias="AWS_REGION")
    district_timezone: str = "Asia/Shanghai"

    # People: RS256 JWTs from a Cognito-compatible issuer.
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_jwks_url: str = ""
    jwt_leeway_s: int = 30

    # Devices: HMAC-signed requests.
    device_clock_skew_s: int = 300
    device_secret_grace_s: int = 24 * 3600

    # Gate access: how long access events are kept (DynamoDB TTL), how often a warm function asks
    # whether its community's gallery has a new version, and which function turns enrollment photos
    # into templates ("" = in this process; the API function names the gate function, which has
    # the models layer).
    gate_event_retention_days: int = 180
    gate_gallery_refresh_s: float = 10.0
    face_encoder_function: str = ""

    # Secret that makes pagination cursors tamper-evident (not confidential data).
    cursor_secret: str = "sunflower-local-cursor-secret"

    # GraphQL limits.
    max_query_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2000
    # Enrollment photos travel base64 in GraphQL variables; Lambda itself takes at most 6 MB.
    max_body_bytes: int = 6_000_000

    log_level: str = "INFO"

    def resource(self, name: str) -> str:
        return f"{self.resource_prefix}-{name}"

    def bucket(self, name: str) -> str:
        return f"{self.bucket_prefix or self.resource_prefix}-{name}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
