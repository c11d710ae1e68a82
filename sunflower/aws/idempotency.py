"""Powertools idempotency on the `idempotency` table, for handlers fed by at-least-once triggers."""

from functools import cache

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

from sunflower.common.settings import get_settings


@cache
def persistence_layer() -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(table_name=get_settings().resource("idempotency"))


def config(key_jmespath: str, *, expires_after_s: int = 7 * 24 * 3600) -> IdempotencyConfig:
    """Key on a natural key of the event (e.g. an S3 object's bucket, key and ETag)."""
    return IdempotencyConfig(event_key_jmespath=key_jmespath, expires_after_seconds=expires_after_s, raise_on_no_idempotency_key=True)
