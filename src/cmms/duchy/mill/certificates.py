"""Certificates of other parties, from the Kingdom's public API, and checking signatures by them.

HMSS workers verify each EDP's signature over the seed it shared; Liquid Legions duchies verify
each other's signed ElGamal keys. A certificate must chain to the trusted root owned by the party
that signed, so one party's certificate can never pass for another's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import grpc
from cryptography import x509

from cmms.api.public.v1 import certificates_pb2, certificates_pb2_grpc
from cmms.common import consent
from cmms.crypto import signing
from cmms.crypto.errors import CryptoError
from cmms.duchy.internal_client import call
from cmms.duchy.mill.errors import PermanentError


class CertificateSource(Protocol):
    async def get(self, name: str) -> x509.Certificate:
        """The certificate named `dataProviders/{dp}/certificates/{c}` (or a duchy's)."""
        ...


class KingdomCertificates:
    """`CertificateSource` over the Kingdom's public `Certificates.GetCertificate`, cached."""

    def __init__(self, channel: grpc.aio.Channel, deadline_seconds: float = 30.0) -> None:
        self._stub = certificates_pb2_grpc.CertificatesStub(channel)
        self._deadline = deadline_seconds
        self._cache: dict[str, x509.Certificate] = {}

    async def get(self, name: str) -> x509.Certificate:
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        request = certificates_pb2.GetCertificateRequest(name=name)
        reply: certificates_pb2.Certificate = await call(
            self._stub.GetCertificate(request, timeout=self._deadline)
        )
        if reply.revocation_state != certificates_pb2.Certificate.REVOCATION_STATE_UNSPECIFIED:
            raise PermanentError(f"certificate {name} is revoked or on hold")
        try:
            certificate = signing.load_certificate(reply.x509_der)
        except CryptoError as error:
            raise PermanentError(f"certificate {name} does not parse: {error}") from error
        self._cache[name] = certificate
        return certificate


class NoCertificates:
    """`CertificateSource` of a mill without the Kingdom's public API."""

    async def get(self, name: str) -> x509.Certificate:
        raise PermanentError(f"no Kingdom public API is configured to fetch {name}")


class SignatureChecker:
    """Verifies signed messages against certificates chained to their owners' trusted roots."""

    def __init__(
        self, trust_store: signing.TrustStore | None, clock: Callable[[], datetime]
    ) -> None:
        self._trust_store = trust_store
        self._clock = clock

    def check(
        self,
        certificate: x509.Certificate,
        data: bytes,
        signature: bytes,
        algorithm_oid: str,
        owner: str,
    ) -> None:
        """Raise `PermanentError` unless `owner`'s certificate signed exactly `data`."""
        if self._trust_store is None:
            raise PermanentError("no trust config: signatures of other parties cannot be checked")
        try:
            signing.verify_trusted(
                certificate,
                data,
                signature,
                algorithm_oid,
                trust_store=self._trust_store,
                now=self._clock(),
                expected_owner=owner,
            )
        except CryptoError as error:
            raise PermanentError(f"signature of {owner} does not verify: {error}") from error


def certificate_owner(name: str) -> str:
    try:
        return consent.certificate_owner(name)
    except consent.ConsentSignalError as error:
        raise PermanentError(str(error)) from error
