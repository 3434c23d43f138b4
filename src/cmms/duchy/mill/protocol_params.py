"""Translating the stored protocol parameters (internal protos) into the pure core's types."""

from __future__ import annotations

from cmms.api.system.v1 import computation_pb2
from cmms.dp.errors import NoiseParameterError
from cmms.dp.parameters import PrivacyParams
from cmms.duchy.mill.errors import PermanentError
from cmms.protocols.measurement import MeasurementType, NoiseMechanism


def noise_mechanism(value: int) -> NoiseMechanism:
    try:
        return NoiseMechanism(value)
    except ValueError:
        raise PermanentError(f"unknown noise mechanism {value}") from None


def measurement_type(value: int) -> MeasurementType:
    try:
        return MeasurementType(value)
    except ValueError:
        raise PermanentError(f"unknown measurement type {value}") from None


def privacy(params: computation_pb2.DifferentialPrivacyParams) -> PrivacyParams:
    try:
        return PrivacyParams(params.epsilon, params.delta)
    except NoiseParameterError as error:
        raise PermanentError(f"invalid DP params: {error}") from error
