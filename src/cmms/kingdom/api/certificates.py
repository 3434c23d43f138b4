"""`Certificates`: Get (read rules of §1.3), Create, Revoke, ReleaseHold, List."""

from __future__ import annotations

from typing import Any

from cmms.api.public.v1 import certificates_pb2, certificates_pb2_grpc
from cmms.common.identity import Principal, PrincipalKind, PrincipalProvider, current_principal
from cmms.kingdom import names
from cmms.kingdom.api.views import certificate_message
from cmms.kingdom.db.records import RevocationState
from cmms.kingdom.db.repository import KingdomRepositories
from cmms.kingdom.errors import invalid_argument, permission_denied
from cmms.kingdom.names import Owner, OwnerKind

_PRINCIPAL_KINDS = {
    OwnerKind.MEASUREMENT_CONSUMER: PrincipalKind.MEASUREMENT_CONSUMER,
    OwnerKind.DATA_PROVIDER: PrincipalKind.DATA_PROVIDER,
    OwnerKind.DUCHY: PrincipalKind.DUCHY,
}
# Who may read certificates of others, by owner kind (owners always read their own).
_READERS = {
    OwnerKind.DUCHY: frozenset(PrincipalKind),
    OwnerKind.DATA_PROVIDER: frozenset({PrincipalKind.MEASUREMENT_CONSUMER, PrincipalKind.DUCHY}),
    OwnerKind.MEASUREMENT_CONSUMER: frozenset({PrincipalKind.DATA_PROVIDER}),
}
_REVOCATION_STATES = {
    certificates_pb2.Certificate.HOLD: RevocationState.HOLD,
    certificates_pb2.Certificate.REVOKED: RevocationState.REVOKED,
}


def _is_owner(principal: Principal, owner: Owner) -> bool:
    return principal.kind is _PRINCIPAL_KINDS[owner.kind] and principal.id == owner.id


class CertificatesServicer(certificates_pb2_grpc.CertificatesServicer):
    def __init__(
        self,
        repositories: KingdomRepositories,
        *,
        principal_provider: PrincipalProvider = current_principal,
    ) -> None:
        self._repositories = repositories
        self._principal = principal_provider

    def _key(self, name: str) -> names.CertificateKey:
        key = names.parse_certificate(name)
        if key is None:
            raise invalid_argument(f"bad certificate name {name!r}")
        return key

    def _require_owner(self, owner: Owner) -> None:
        principal = self._principal()
        if not _is_owner(principal, owner):
            raise permission_denied(f"only {owner.name} may change its certificates")

    def _require_reader(self, owner: Owner) -> None:
        principal = self._principal()
        if not (_is_owner(principal, owner) or principal.kind in _READERS[owner.kind]):
            raise permission_denied(f"{principal} may not read certificates of {owner.name}")

    async def GetCertificate(
        self, request: certificates_pb2.GetCertificateRequest, context: Any
    ) -> certificates_pb2.Certificate:
        key = self._key(request.name)
        self._require_reader(key.owner)
        return certificate_message(await self._repositories.certificates.get(key))

    async def CreateCertificate(
        self, request: certificates_pb2.CreateCertificateRequest, context: Any
    ) -> certificates_pb2.Certificate:
        owner = names.parse_owner(request.parent)
        if owner is None:
            raise invalid_argument(f"bad parent {request.parent!r}")
        self._require_owner(owner)
        record = await self._repositories.certificates.create(owner, request.certificate.x509_der)
        return certificate_message(record)

    async def RevokeCertificate(
        self, request: certificates_pb2.RevokeCertificateRequest, context: Any
    ) -> certificates_pb2.Certificate:
        key = self._key(request.name)
        self._require_owner(key.owner)
        target = _REVOCATION_STATES.get(request.revocation_state)
        if target is None:
            raise invalid_argument("revocation_state must be HOLD or REVOKED")
        return certificate_message(await self._repositories.certificates.revoke(key, target))

    async def ReleaseCertificateHold(
        self, request: certificates_pb2.ReleaseCertificateHoldRequest, context: Any
    ) -> certificates_pb2.Certificate:
        key = self._key(request.name)
        self._require_owner(key.owner)
        return certificate_message(await self._repositories.certificates.release_hold(key))

    async def ListCertificates(
        self, request: certificates_pb2.ListCertificatesRequest, context: Any
    ) -> certificates_pb2.ListCertificatesResponse:
        owner = names.parse_owner(request.parent)
        if owner is None:
            raise invalid_argument(f"bad parent {request.parent!r}")
        self._require_reader(owner)
        records = await self._repositories.certificates.list_owned(
            owner, list(request.filter.subject_key_identifiers)
        )
        return certificates_pb2.ListCertificatesResponse(
            certificates=[certificate_message(r) for r in records]
        )
