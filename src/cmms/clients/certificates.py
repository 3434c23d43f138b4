"""Certificates by resource name, fetched from the Kingdom once and cached."""

from __future__ import annotations

from typing import Protocol

import grpc
from cryptography import x509

from cmms.api.public.v1 import certificates_pb2, certificates_pb2_grpc
from cmms.common.consent import ConsentSignalError
from cmms.crypto import signing
from cmms.crypto.errors import SignatureError


class CertificateSource(Protocol):
    """Looks up an X.509 certificate by its resource name."""

    async def get(self, name: str) -> x509.Certificate:
        """The certificate; `ConsentSignalError` if it does not exist or does not parse."""
        ...


class StaticCertificates:
    """A fixed name -> DER map (tests, and parties whose certificates are known up front)."""

    def __init__(self, certificates: dict[str, bytes]) -> None:
        self._certificates = dict(certificates)

    async def get(self, name: str) -> x509.Certificate:
        der = self._certificates.get(name)
        if der is None:
            raise ConsentSignalError(f"unknown certificate {name!r}")
        return _parse(name, der)


class KingdomCertificates:
    """`Certificates.GetCertificate`, cached: certificates are immutable once registered."""

    def __init__(self, stub: certificates_pb2_grpc.CertificatesStub) -> None:
        self._stub = stub
        self._cache: dict[str, x509.Certificate] = {}

    async def get(self, name: str) -> x509.Certificate:
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        try:
            response = await self._stub.GetCertificate(
                certificates_pb2.GetCertificateRequest(name=name)
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
                raise ConsentSignalError(f"certificate {name!r}: {exc.details()}") from exc
            raise
        certificate = _parse(name, response.x509_der)
        self._cache[name] = certificate
        return certificate


def _parse(name: str, der: bytes) -> x509.Certificate:
    try:
        return signing.load_certificate(der)
    except SignatureError as exc:
        raise ConsentSignalError(f"certificate {name!r} does not parse: {exc}") from exc
