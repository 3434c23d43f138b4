"""An in-memory KMS for tests: `fake-kms://<name>` names a KEK held in this process (hmss spec §B.5)."""

from __future__ import annotations

from cmms.common.kms import KmsError
from cmms.crypto.keystore import Aead, aead_from_cleartext_keyset, generate_kek_keyset

FAKE_KMS_PREFIX = "fake-kms://"


class FakeKms:
    """KEKs by name. Satisfies `cmms.crypto.keystore.KmsClient`."""

    def __init__(self) -> None:
        self._keks: dict[str, Aead] = {}

    def create_key(self, name: str) -> str:
        """A fresh AES256-GCM KEK under `name`; returns its URI."""
        return self.add_key(name, generate_kek_keyset())

    def add_key(self, name: str, kek_keyset: bytes) -> str:
        """Serve a given cleartext AEAD keyset (e.g. a `*_kek.tink` fixture) under `name`."""
        if not name or "/" in name:
            raise KmsError(f"fake KMS key names are non-empty and have no '/': {name!r}")
        uri = f"{FAKE_KMS_PREFIX}{name}"
        if uri in self._keks:
            raise KmsError(f"fake KMS key {uri} already exists")
        self._keks[uri] = aead_from_cleartext_keyset(kek_keyset)
        return uri

    def supports(self, key_uri: str) -> bool:
        return key_uri.startswith(FAKE_KMS_PREFIX)

    def get_aead(self, key_uri: str) -> Aead:
        try:
            return self._keks[key_uri]
        except KeyError:
            raise KmsError(f"fake KMS has no key {key_uri!r}") from None
