"""Starter of TrusTee (hmss spec §B.2): one duchy, always the aggregator, starting INITIALIZED.

Every noise mechanism is accepted. DP parameters are always recorded (the mill ignores them under
NONE), and checked only where the reference checks them: reach and frequency with noise.
"""

from __future__ import annotations

from cmms.api.internal.duchy.protocol.v1 import trustee_pb2
from cmms.duchy.herald.starters.common import (
    Computation,
    CreateRequest,
    DuchyContext,
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
from cmms.duchy.internal_api.convert import stage_to_proto
from cmms.protocols.measurement import MeasurementType, NoiseMechanism
from cmms.protocols.stages import ProtocolType, RoleInComputation

TrusTee = trustee_pb2.TrusTee
TRUSTEE_MINIMUM_EPSILON = 1e-6


class TrusTeeStarter:
    def __init__(self, duchy: DuchyContext) -> None:
        self._duchy = duchy

    async def creation_request(self, computation: Computation) -> CreateRequest:
        setup = self._duchy.setup.trustee
        if setup is None or setup.duchy != self._duchy.duchy_id:
            raise StarterError(f"duchy {self._duchy.duchy_id} is not set up to run TrusTee")
        config = computation.mpc_protocol_config.trus_tee
        spec = measurement_spec(computation)
        kind = measurement_type(spec)
        mechanism = noise_mechanism(config.noise_mechanism, frozenset(NoiseMechanism), "TrusTee")
        parameters = TrusTee.Parameters(
            maximum_frequency=maximum_frequency(spec, kind),
            noise_mechanism=mechanism,  # type: ignore[arg-type]
            vid_sampling_interval_width=spec.vid_sampling_interval.width,
        )
        reach = reach_dp(spec, kind)
        if kind is MeasurementType.REACH_AND_FREQUENCY:
            frequency = frequency_dp(spec)
            if mechanism != NoiseMechanism.NONE:
                check_dp(reach, "reach", TRUSTEE_MINIMUM_EPSILON)
                check_dp(frequency, "frequency", TRUSTEE_MINIMUM_EPSILON)
            parameters.frequency_dp_params.CopyFrom(frequency)
        parameters.reach_dp_params.CopyFrom(reach)
        if config.HasField("result_minimum_thresholds"):
            parameters.result_minimum_thresholds.CopyFrom(config.result_minimum_thresholds)
        details = base_details(computation, spec, self._duchy)
        trustee = details.trus_tee
        trustee.role = int(RoleInComputation.AGGREGATOR)  # type: ignore[assignment]
        trustee.measurement_type = int(kind)  # type: ignore[assignment]
        trustee.parameters.CopyFrom(parameters)
        initialized = stage_to_proto(ProtocolType.TRUS_TEE, TrusTee.INITIALIZED)
        return creation_request(computation, ProtocolType.TRUS_TEE, details, initialized)
