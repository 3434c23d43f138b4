"""Authenticating the caller of an RPC from its TLS client certificate."""

from __future__ import annotations

import functools

import grpc

from cmms.common.grpc.status import StatusError
from cmms.common.identity import Principal, TrustConfig, akid_of_pem_certificate

_PEER_CERT_KEY = "x509_pem_cert"


@functools.lru_cache(maxsize=1024)
def _akid_of(pem: bytes) -> bytes | None:
    # Parsing a certificate costs far more than the RPC bookkeeping; peers are few.
    return akid_of_pem_certificate(pem)


def peer_certificate_pem(context: grpc.aio.ServicerContext) -> bytes | None:
    """The PEM of the caller's TLS leaf certificate, or None without a verified client cert."""
    certificates = list(context.auth_context().get(_PEER_CERT_KEY) or ())
    # Identity comes from one leaf issued directly by a party's root; anything else is ambiguous.
    if len(certificates) != 1:
        return None
    pem: bytes = certificates[0]
    return pem


def resolve_caller(context: grpc.aio.ServicerContext, trust: TrustConfig) -> Principal:
    """The caller's principal (its leaf's AKID looked up in `trust`); else UNAUTHENTICATED."""
    pem = peer_certificate_pem(context)
    if pem is None:
        raise StatusError(grpc.StatusCode.UNAUTHENTICATED, "no TLS client certificate")
    try:
        akid = _akid_of(pem)
    except ValueError as exc:
        raise StatusError(grpc.StatusCode.UNAUTHENTICATED, "unreadable client certificate") from exc
    if akid is None:
        raise StatusError(
            grpc.StatusCode.UNAUTHENTICATED,
            "client certificate has no Authority Key Identifier",
        )
    principal = trust.principal_for_akid(akid)
    if principal is None:
        raise StatusError(
            grpc.StatusCode.UNAUTHENTICATED,
            f"client certificate issued by an unknown root (AKID {akid.hex()})",
        )
    return principal
