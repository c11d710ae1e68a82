"""KMS envelope encryption with the AWS Encryption SDK: a fresh data key per message, wrapped by
the district's KMS key, bound to an encryption context that decryption checks.

For data too large or too hot for `kms.encrypt` (4 KB limit, one KMS call per use): face templates
and galleries. The messages are the SDK's standard format, so any ESDK in any language opens them.
"""

from collections.abc import Mapping
from functools import cache

import aws_encryption_sdk
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.identifiers import Algorithm
from aws_encryption_sdk.key_providers.kms import (
    DiscoveryAwsKmsMasterKeyProvider,
    DiscoveryFilter,
    StrictAwsKmsMasterKeyProvider,
)

from sunflower.aws.clients import client
from sunflower.aws.kms import data_key_alias
from sunflower.common.errors import InvalidState
from sunflower.common.settings import get_settings

# Key-committing AES-GCM without the ECDSA signature: writers and readers are the same trusted
# functions, and the signature would cost ~10 ms per message on a gate check's reload path.
_ALGORITHM = Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY


@cache
def _sdk() -> aws_encryption_sdk.EncryptionSDKClient:
    return aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT, max_encrypted_data_keys=1
    )


@cache
def _account() -> tuple[str, str]:
    arn = client("sts").get_caller_identity()["Arn"]  # arn:<partition>:...:<account>:...
    parts = arn.split(":")
    return parts[1], parts[4]


@cache
def _writer() -> StrictAwsKmsMasterKeyProvider:
    partition, account = _account()
    alias_arn = f"arn:{partition}:kms:{get_settings().region}:{account}:{data_key_alias()}"
    return StrictAwsKmsMasterKeyProvider(key_ids=[alias_arn])


@cache
def _reader() -> DiscoveryAwsKmsMasterKeyProvider:
    # Whichever key of this account wrapped the message: the alias may point at a rotated key.
    partition, account = _account()
    return DiscoveryAwsKmsMasterKeyProvider(discovery_filter=DiscoveryFilter(account_ids=[account], partition=partition))


def seal(plaintext: bytes, context: Mapping[str, str]) -> bytes:
    ciphertext, _ = _sdk().encrypt(
        source=plaintext, key_provider=_writer(), encryption_context=dict(context), algorithm=_ALGORITHM
    )
    return ciphertext


def open_sealed(message: bytes, context: Mapping[str, str]) -> bytes:
    """The plaintext, if the message was sealed with (at least) this context; else InvalidState."""
    try:
        plaintext, header = _sdk().decrypt(source=message, key_provider=_reader())
    except aws_encryption_sdk.exceptions.AWSEncryptionSDKClientError as exc:
        raise InvalidState(f"encrypted data cannot be opened: {exc}") from None
    stored = header.encryption_context
    wrong = sorted(k for k, v in context.items() if stored.get(k) != v)
    if wrong:
        raise InvalidState(f"encrypted data belongs elsewhere (context differs in {', '.join(wrong)})")
    return plaintext


def reset() -> None:
    """Forget providers (tests that switch endpoints)."""
    for cached in (_account, _writer, _reader):
        cached.cache_clear()
