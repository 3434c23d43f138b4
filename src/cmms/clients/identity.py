"""A consumer's or provider's own key material: signing key, encryption key and trusted roots."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cmms.common.consent import trust_store_with_owners
from cmms.common.identity import Principal, TrustConfig
from cmms.common.pki import PkiLayout
from cmms.crypto import signing
from cmms.crypto.hybrid import HybridPrivateKey


@dataclass(frozen=True)
class PartyKeys:
    """What a party signs with, decrypts with, and trusts."""

    principal: Principal
    signing_key: signing.SigningKey
    encryption_key: HybridPrivateKey
    trust_store: signing.TrustStore

    @property
    def name(self) -> str:
        """The party's resource name, e.g. `dataProviders/edp1`."""
        return self.principal.resource_name

    @property
    def public_keyset(self) -> bytes:
        """The binary Tink public keyset others encrypt to."""
        return self.encryption_key.public_key().keyset()

    @classmethod
    def from_files(
        cls,
        principal: Principal,
        *,
        signing_key_file: Path,
        encryption_private_keyset_file: Path,
        trusted_roots_file: Path,
        trust_config_file: Path,
    ) -> PartyKeys:
        """Load `*_cs_private.der`, `*_enc_private.tink`, `all_root_certs.pem`, `trust_config.json`."""
        return cls(
            principal=principal,
            signing_key=signing.load_private_key(signing_key_file.read_bytes()),
            encryption_key=HybridPrivateKey.from_cleartext_keyset(
                encryption_private_keyset_file.read_bytes()
            ),
            trust_store=trust_store_with_owners(
                trusted_roots_file.read_bytes(), TrustConfig.load(trust_config_file)
            ),
        )

    @classmethod
    def from_pki(cls, layout: PkiLayout, principal: Principal) -> PartyKeys:
        """The party's files in a `cmms certs generate` directory."""
        return cls.from_files(
            principal,
            signing_key_file=layout.party(principal).cs_key,
            encryption_private_keyset_file=layout.encryption_keys(principal).private_keyset,
            trusted_roots_file=layout.all_root_certs,
            trust_config_file=layout.trust_config,
        )
