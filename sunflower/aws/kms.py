"""Small secrets encrypted under the district's data key, bound to an encryption context."""

from collections.abc import Mapping

from sunflower.aws.clients import client
from sunflower.common.settings import get_settings


def data_key_alias() -> str:
    return f"alias/{get_settings().resource('data')}"


def encrypt(plaintext: bytes, context: Mapping[str, str]) -> bytes:
    response = client("kms").encrypt(KeyId=data_key_alias(), Plaintext=plaintext, EncryptionContext=dict(context))
    return response["CiphertextBlob"]


def decrypt(ciphertext: bytes, context: Mapping[str, str]) -> bytes:
    return client("kms").decrypt(CiphertextBlob=ciphertext, EncryptionContext=dict(context))["Plaintext"]
