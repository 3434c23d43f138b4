"""Opening a measurement's results (kingdom spec §4.5, MC): decrypt, check the signer, unpack.

MPC results must be signed by a duchy (one result); direct results by one of the measurement's
own EDPs. Each signer's certificate must chain to that party's trusted root.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cmms.api.public.v1 import measurements_pb2
from cmms.clients.certificates import CertificateSource
from cmms.clients.identity import PartyKeys
from cmms.common import consent
from cmms.common.consent import ConsentSignalError

Measurement = measurements_pb2.Measurement


class ResultVerificationError(Exception):
    """A result cannot be trusted or read."""


@dataclass(frozen=True)
class VerifiedResult:
    """One result, with the party whose signature vouches for it."""

    signer: str
    certificate: str
    result: measurements_pb2.Measurement.Result


async def verify_results(
    measurement: measurements_pb2.Measurement,
    keys: PartyKeys,
    certificates: CertificateSource,
    *,
    now: datetime,
) -> list[VerifiedResult]:
    """Every result of a SUCCEEDED measurement, decrypted and verified."""
    if measurement.state != Measurement.SUCCEEDED:
        raise ResultVerificationError(
            f"{measurement.name} is {Measurement.State.Name(measurement.state)}, not SUCCEEDED"
        )
    is_direct = measurement.protocol_config.WhichOneof("protocol") == "direct"
    if not measurement.results:
        raise ResultVerificationError(f"{measurement.name} has no result")
    if not is_direct and len(measurement.results) != 1:
        raise ResultVerificationError(
            f"an MPC measurement has one result, {measurement.name} has {len(measurement.results)}"
        )
    data_providers = {entry.key for entry in measurement.data_providers}
    verified: list[VerifiedResult] = []
    for output in measurement.results:
        try:
            signer = consent.certificate_owner(output.certificate)
            allowed = signer in data_providers if is_direct else signer.startswith("duchies/")
            if not allowed:
                raise ConsentSignalError(f"{signer} may not sign a result of this measurement")
            certificate = await certificates.get(output.certificate)
            signed = consent.decrypt_signed(output.encrypted_result, keys.encryption_key)
            consent.verify_signed(
                signed, certificate, trust_store=keys.trust_store, now=now, expected_owner=signer
            )
            result = consent.unpack(signed, Measurement.Result)
        except ConsentSignalError as exc:
            raise ResultVerificationError(f"result of {measurement.name}: {exc}") from exc
        verified.append(
            VerifiedResult(signer=signer, certificate=output.certificate, result=result)
        )
    return verified
