"""Building a CreateMeasurement request (kingdom spec §5 steps 1-2), free of I/O.

Per EDP the consumer draws a fresh non-zero nonce, signs a RequisitionSpec holding it and encrypts
that to the EDP's public key; the MeasurementSpec lists the hashes of all nonces and is signed
once. Signatures cover the serialized bytes, which the Kingdom then stores verbatim.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cmms.api.public.v1 import (
    common_pb2,
    crypto_pb2,
    measurement_spec_pb2,
    measurements_pb2,
    requisition_spec_pb2,
)
from cmms.clients.identity import PartyKeys
from cmms.common import consent
from cmms.crypto.randomness import RandomSource


class MeasurementKind(enum.Enum):
    """What the consumer asks for."""

    REACH = "reach"
    REACH_AND_FREQUENCY = "reach-and-frequency"


@dataclass(frozen=True)
class PrivacyBudget:
    epsilon: float = 1.0
    delta: float = 1e-15

    def proto(self) -> common_pb2.DifferentialPrivacyParams:
        return common_pb2.DifferentialPrivacyParams(epsilon=self.epsilon, delta=self.delta)


@dataclass(frozen=True)
class MeasurementParams:
    """The consumer's choices; the defaults measure everything exactly once, unsampled."""

    kind: MeasurementKind = MeasurementKind.REACH_AND_FREQUENCY
    reach_privacy: PrivacyBudget = field(default_factory=PrivacyBudget)
    frequency_privacy: PrivacyBudget = field(default_factory=PrivacyBudget)
    vid_sampling_start: float = 0.0
    vid_sampling_width: float = 1.0
    max_frequency: int = 10
    collection_interval: tuple[datetime, datetime] | None = None
    event_filter: str = ""

    def __post_init__(self) -> None:
        if self.kind is MeasurementKind.REACH_AND_FREQUENCY and self.max_frequency < 2:
            raise ValueError(f"maximum frequency must exceed 1, got {self.max_frequency}")
        if not 0 < self.vid_sampling_width <= 1 or not 0 <= self.vid_sampling_start <= 1:
            raise ValueError("need 0 < sampling width <= 1 and 0 <= sampling start <= 1")


@dataclass(frozen=True)
class DataProviderTarget:
    """An EDP as the consumer addresses it: its certificate, its encryption key, its groups."""

    name: str
    certificate: str
    public_key: crypto_pb2.EncryptionPublicKey
    event_groups: tuple[str, ...]


@dataclass(frozen=True)
class PreparedMeasurement:
    """The request, and each EDP's nonce (the consumer's record of what it consented to)."""

    request: measurements_pb2.CreateMeasurementRequest
    nonces: dict[str, int]


def measurement_spec(
    params: MeasurementParams,
    measurement_public_key: crypto_pb2.EncryptionPublicKey,
    nonce_hashes: Sequence[bytes],
) -> measurement_spec_pb2.MeasurementSpec:
    spec = measurement_spec_pb2.MeasurementSpec(nonce_hashes=list(nonce_hashes))
    spec.measurement_public_key.CopyFrom(measurement_public_key)
    spec.vid_sampling_interval.start = params.vid_sampling_start
    spec.vid_sampling_interval.width = params.vid_sampling_width
    if params.kind is MeasurementKind.REACH:
        spec.reach.privacy_params.CopyFrom(params.reach_privacy.proto())
    else:
        rf = spec.reach_and_frequency
        rf.reach_privacy_params.CopyFrom(params.reach_privacy.proto())
        rf.frequency_privacy_params.CopyFrom(params.frequency_privacy.proto())
        rf.maximum_frequency = params.max_frequency
    return spec


def requisition_spec(
    params: MeasurementParams,
    measurement_public_key: crypto_pb2.EncryptionPublicKey,
    event_groups: Sequence[str],
    nonce: int,
) -> requisition_spec_pb2.RequisitionSpec:
    spec = requisition_spec_pb2.RequisitionSpec(nonce=nonce)
    spec.measurement_public_key.CopyFrom(measurement_public_key)
    for group in event_groups:
        entry = spec.event_groups.add(key=group, filter=params.event_filter)
        if params.collection_interval is not None:
            start, end = params.collection_interval
            entry.collection_interval.start_time.FromDatetime(start)
            entry.collection_interval.end_time.FromDatetime(end)
    return spec


def build_create_measurement_request(
    keys: PartyKeys,
    certificate: str,
    params: MeasurementParams,
    data_providers: Sequence[DataProviderTarget],
    random: RandomSource,
    *,
    request_id: str = "",
    measurement_reference_id: str = "",
) -> PreparedMeasurement:
    """A signed, encrypted CreateMeasurementRequest for `data_providers`."""
    if not data_providers:
        raise ValueError("a measurement needs at least one data provider")
    measurement_public_key = consent.encryption_public_key(keys.public_keyset)
    measurement = measurements_pb2.Measurement(
        measurement_consumer_certificate=certificate,
        measurement_reference_id=measurement_reference_id,
    )
    nonces: dict[str, int] = {}
    for provider in data_providers:
        nonce = consent.random_nonce(random)
        nonces[provider.name] = nonce
        signed = consent.sign_message(
            requisition_spec(params, measurement_public_key, provider.event_groups, nonce),
            keys.signing_key,
        )
        encrypted = consent.encrypt_signed(signed, provider.public_key.data)
        entry = measurement.data_providers.add(key=provider.name)
        entry.value.data_provider_certificate = provider.certificate
        entry.value.data_provider_public_key.CopyFrom(provider.public_key)
        entry.value.encrypted_requisition_spec.CopyFrom(encrypted)
        entry.value.nonce_hash = consent.nonce_hash(nonce)
    spec = measurement_spec(
        params, measurement_public_key, [consent.nonce_hash(n) for n in nonces.values()]
    )
    measurement.measurement_spec.CopyFrom(consent.sign_message(spec, keys.signing_key))
    request = measurements_pb2.CreateMeasurementRequest(
        parent=keys.name, measurement=measurement, request_id=request_id
    )
    return PreparedMeasurement(request=request, nonces=nonces)
