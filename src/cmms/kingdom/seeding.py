"""Admin seeding: register every party and certificate of a `cmms certs generate` directory.

Idempotent: running it twice changes nothing. For each measurement consumer and data provider
the consent-signaling certificate becomes its current certificate; if the directory also holds
`{id}_enc_public.tink` (a binary Tink public keyset), it is wrapped in an EncryptionPublicKey and
signed with the party's consent-signaling key, as the party itself would. Duchies get their
consent-signaling certificate registered under `duchies/{id}`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf import any_pb2

from cmms.api.public.v1 import crypto_pb2
from cmms.common.identity import Principal, PrincipalKind
from cmms.common.pki import PkiLayout
from cmms.crypto import signing
from cmms.kingdom.db.repository import KingdomRepositories
from cmms.kingdom.names import Owner, OwnerKind, certificate_name

_TYPE_URL_PREFIX = "type.googleapis.com/"

_OWNER_KINDS = {
    PrincipalKind.MEASUREMENT_CONSUMER: OwnerKind.MEASUREMENT_CONSUMER,
    PrincipalKind.DATA_PROVIDER: OwnerKind.DATA_PROVIDER,
    PrincipalKind.DUCHY: OwnerKind.DUCHY,
}


@dataclass
class SeedReport:
    """What was registered, by resource name (certificate names included)."""

    parties: list[str] = field(default_factory=list)
    certificates: list[str] = field(default_factory=list)


def signed_encryption_public_key(layout: PkiLayout, principal: Principal) -> bytes | None:
    """The serialized SignedMessage over the party's EncryptionPublicKey, if it has a key file."""
    path = layout.encryption_keys(principal).public_keyset
    if not path.is_file():
        return None
    key = crypto_pb2.EncryptionPublicKey(
        format=crypto_pb2.EncryptionPublicKey.TINK_KEYSET, data=path.read_bytes()
    )
    payload = key.SerializeToString()
    signing_key = signing.load_private_key(layout.party(principal).cs_key.read_bytes())
    oid = signing.default_signature_algorithm_oid(signing_key)
    message = crypto_pb2.SignedMessage(
        message=any_pb2.Any(type_url=_TYPE_URL_PREFIX + key.DESCRIPTOR.full_name, value=payload),
        signature=signing.sign(signing_key, payload, oid),
        signature_algorithm_oid=oid,
    )
    return message.SerializeToString()


async def seed_from_pki(repositories: KingdomRepositories, layout: PkiLayout) -> SeedReport:
    """Register every MC, EDP and duchy of the PKI's trust config with its certificates."""
    report = SeedReport()
    principals = sorted(layout.load_trust_config().principals, key=lambda p: p.resource_name)
    for principal in principals:
        kind = _OWNER_KINDS.get(principal.kind)
        if kind is None:
            continue
        files = layout.party(principal)
        certificate = await repositories.certificates.ensure(
            Owner(kind, principal.id), files.cs_cert.read_bytes()
        )
        report.certificates.append(certificate_name(kind, principal.id, certificate.certificate_id))
        public_key = (
            None if kind is OwnerKind.DUCHY else signed_encryption_public_key(layout, principal)
        )
        if kind is OwnerKind.MEASUREMENT_CONSUMER:
            await repositories.parties.upsert_measurement_consumer(
                principal.id,
                display_name=principal.id,
                public_key=public_key,
                certificate_id=certificate.certificate_id,
            )
        elif kind is OwnerKind.DATA_PROVIDER:
            await repositories.parties.upsert_data_provider(
                principal.id,
                display_name=principal.id,
                public_key=public_key,
                certificate_id=certificate.certificate_id,
            )
        report.parties.append(principal.resource_name)
    return report
