"""Starters of Liquid Legions v2 (reach and frequency) and its reach-only variant.

Both start at INITIALIZATION_PHASE; the mill then makes the ElGamal key. Parameters come from the
Kingdom's MPC protocol config (sketch, curve, blinded-histogram and publisher noise, mechanism) and
from the MeasurementSpec (maximum frequency, reach and frequency DP). Only the distributed
mechanisms work here: NONE and DETERMINISTIC_TRUNCATED_LAPLACE fail the computation.
"""

from __future__ import annotations

from cmms.api.internal.duchy.protocol.v1 import common_pb2, llv2_pb2, reach_only_llv2_pb2
from cmms.api.system.v1 import computation_pb2
from cmms.duchy.herald.config import LiquidLegionsSetup
from cmms.duchy.herald.starters.common import (
    Computation,
    CreateRequest,
    DuchyContext,
    MeasurementSpec,
    StarterError,
    base_details,
    check_dp,
    creation_request,
    frequency_dp,
    maximum_frequency,
    measurement_spec,
    measurement_type,
    noise_mechanism,
    reach_dp,
)
from cmms.protocols.measurement import MeasurementType, NoiseMechanism
from cmms.protocols.stages import ProtocolType

LlConfig = computation_pb2.Computation.MpcProtocolConfig.LiquidLegionsV2

LIQUID_LEGIONS_MECHANISMS = frozenset(
    {NoiseMechanism.GEOMETRIC, NoiseMechanism.DISCRETE_GAUSSIAN, NoiseMechanism.CONTINUOUS_GAUSSIAN}
)
LIQUID_LEGIONS_MINIMUM_EPSILON = 1e-5


def _setup(setup: LiquidLegionsSetup | None, protocol: str) -> LiquidLegionsSetup:
    if setup is None:
        raise StarterError(f"this duchy is not set up for {protocol}")
    return setup


def _sketch(config: LlConfig) -> common_pb2.LiquidLegionsSketchParameters:
    return common_pb2.LiquidLegionsSketchParameters(
        decay_rate=config.sketch_params.decay_rate, size=config.sketch_params.max_size
    )


def _noise(
    config: LlConfig, spec: MeasurementSpec, kind: MeasurementType, protocol: str
) -> common_pb2.LiquidLegionsNoiseConfig:
    noise = common_pb2.LiquidLegionsNoiseConfig(
        noise_mechanism=noise_mechanism(  # type: ignore[arg-type]
            config.noise_mechanism, LIQUID_LEGIONS_MECHANISMS, protocol
        )
    )
    if config.mpc_noise.HasField("blinded_histogram_noise"):
        noise.blinded_histogram_noise.CopyFrom(config.mpc_noise.blinded_histogram_noise)
    if config.mpc_noise.HasField("publisher_noise"):
        noise.publisher_noise.CopyFrom(config.mpc_noise.publisher_noise)
    minimum = LIQUID_LEGIONS_MINIMUM_EPSILON
    noise.reach_noise.CopyFrom(check_dp(reach_dp(spec, kind), "reach", minimum))
    if kind is MeasurementType.REACH_AND_FREQUENCY:
        noise.frequency_noise.CopyFrom(check_dp(frequency_dp(spec), "frequency", minimum))
    return noise


class LiquidLegionsV2Starter:
    def __init__(self, duchy: DuchyContext) -> None:
        self._duchy = duchy

    async def creation_request(self, computation: Computation) -> CreateRequest:
        setup = _setup(self._duchy.setup.llv2, "Liquid Legions v2")
        config = computation.mpc_protocol_config.liquid_legions_v2
        spec = measurement_spec(computation)
        kind = measurement_type(spec)
        parameters = llv2_pb2.LiquidLegionsV2.Parameters(
            maximum_frequency=maximum_frequency(spec, kind),
            sketch_parameters=_sketch(config),
            noise=_noise(config, spec, kind, "Liquid Legions v2"),
            elliptic_curve_id=config.elliptic_curve_id,
            requisition_count=len(computation.requisitions),
        )
        details = base_details(computation, spec, self._duchy)
        details.liquid_legions_v2.role = setup.role_of(self._duchy.duchy_id)  # type: ignore[assignment]
        details.liquid_legions_v2.parameters.CopyFrom(parameters)
        return creation_request(computation, ProtocolType.LIQUID_LEGIONS_V2, details)


class ReachOnlyLiquidLegionsV2Starter:
    def __init__(self, duchy: DuchyContext) -> None:
        self._duchy = duchy

    async def creation_request(self, computation: Computation) -> CreateRequest:
        setup = _setup(self._duchy.setup.reach_only_llv2, "reach-only Liquid Legions v2")
        config = computation.mpc_protocol_config.reach_only_liquid_legions_v2
        spec = measurement_spec(computation)
        kind = measurement_type(spec, allowed=(MeasurementType.REACH,))
        parameters = reach_only_llv2_pb2.ReachOnlyLiquidLegionsV2.Parameters(
            sketch_parameters=_sketch(config),
            noise=_noise(config, spec, kind, "reach-only Liquid Legions v2"),
            elliptic_curve_id=config.elliptic_curve_id,
            requisition_count=len(computation.requisitions),
        )
        details = base_details(computation, spec, self._duchy)
        ro = details.reach_only_liquid_legions_v2
        ro.role = setup.role_of(self._duchy.duchy_id)  # type: ignore[assignment]
        ro.parameters.CopyFrom(parameters)
        return creation_request(computation, ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2, details)
