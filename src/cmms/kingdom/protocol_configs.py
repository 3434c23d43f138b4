"""The protocol configs stored with a measurement: the public one (MCs, EDPs) and the duchy one.

Built once at creation and stored serialized; both are Kingdom-made, so serializing is safe.
"""

from __future__ import annotations

from cmms.api.public.v1 import common_pb2, protocol_config_pb2
from cmms.api.system.v1 import computation_pb2
from cmms.kingdom.config import KingdomConfig, LiquidLegionsConfig, NoiseMechanism
from cmms.kingdom.db.records import Protocol
from cmms.kingdom.planning import MeasurementType, ProtocolChoice

PublicConfig = protocol_config_pb2.ProtocolConfig
MpcConfig = computation_pb2.Computation.MpcProtocolConfig


def public_noise(mechanism: NoiseMechanism) -> common_pb2.NoiseMechanism.ValueType:
    return common_pb2.NoiseMechanism.Value(mechanism.value)


def system_noise(mechanism: NoiseMechanism) -> computation_pb2.NoiseMechanism.ValueType:
    if mechanism is NoiseMechanism.CONTINUOUS_LAPLACE:
        # The duchy-facing enum has no continuous Laplace; no MPC protocol uses it.
        raise ValueError("CONTINUOUS_LAPLACE is not an MPC noise mechanism")
    return computation_pb2.NoiseMechanism.Value(mechanism.value)


def _public_ll(config: LiquidLegionsConfig, reach_only: bool) -> PublicConfig.LiquidLegionsV2:
    message = PublicConfig.LiquidLegionsV2(
        elliptic_curve_id=config.elliptic_curve_id,
        noise_mechanism=public_noise(config.noise_mechanism),
    )
    message.sketch_params.decay_rate = config.sketch.decay_rate
    message.sketch_params.max_size = config.sketch.max_size
    message.sketch_params.sampling_indicator_size = (
        0 if reach_only else config.sketch.sampling_indicator_size
    )
    if config.data_provider_noise is not None:
        message.data_provider_noise.epsilon = config.data_provider_noise.epsilon
        message.data_provider_noise.delta = config.data_provider_noise.delta
    return message


def _system_ll(config: LiquidLegionsConfig, reach_only: bool) -> MpcConfig.LiquidLegionsV2:
    message = MpcConfig.LiquidLegionsV2(
        elliptic_curve_id=config.elliptic_curve_id,
        noise_mechanism=system_noise(config.noise_mechanism),
    )
    message.sketch_params.decay_rate = config.sketch.decay_rate
    message.sketch_params.max_size = config.sketch.max_size
    message.sketch_params.sampling_indicator_size = (
        0 if reach_only else config.sketch.sampling_indicator_size
    )
    noise = config.mpc_noise
    message.mpc_noise.blinded_histogram_noise.epsilon = noise.blinded_histogram.epsilon
    message.mpc_noise.blinded_histogram_noise.delta = noise.blinded_histogram.delta
    message.mpc_noise.publisher_noise.epsilon = noise.publisher.epsilon
    message.mpc_noise.publisher_noise.delta = noise.publisher.delta
    return message


def build_configs(
    config: KingdomConfig, choice: ProtocolChoice, measurement_type: MeasurementType
) -> tuple[PublicConfig, MpcConfig | None]:
    """The public ProtocolConfig and (for MPC) the duchies' MpcProtocolConfig."""
    public = PublicConfig(
        measurement_type=PublicConfig.MeasurementType.Value(measurement_type.value)
    )
    protocol = choice.protocol
    if protocol is Protocol.DIRECT:
        public.direct.noise_mechanisms.extend(
            public_noise(m) for m in config.direct.noise_mechanisms
        )
        methodologies = [
            PublicConfig.Direct.CUSTOM_DIRECT,
            PublicConfig.Direct.DETERMINISTIC_COUNT_DISTINCT,
            PublicConfig.Direct.LIQUID_LEGIONS_COUNT_DISTINCT,
        ]
        if measurement_type is MeasurementType.REACH_AND_FREQUENCY:
            methodologies += [
                PublicConfig.Direct.DETERMINISTIC_DISTRIBUTION,
                PublicConfig.Direct.LIQUID_LEGIONS_DISTRIBUTION,
            ]
        elif measurement_type is not MeasurementType.REACH:
            methodologies = [
                PublicConfig.Direct.CUSTOM_DIRECT,
                PublicConfig.Direct.DETERMINISTIC_COUNT,
                PublicConfig.Direct.DETERMINISTIC_SUM,
            ]
        public.direct.methodologies.extend(methodologies)
        return public, None
    mpc = MpcConfig()
    if protocol is Protocol.LLV2:
        public.liquid_legions_v2.CopyFrom(_public_ll(config.llv2, reach_only=False))
        mpc.liquid_legions_v2.CopyFrom(_system_ll(config.llv2, reach_only=False))
    elif protocol is Protocol.REACH_ONLY_LLV2:
        assert config.reach_only_llv2 is not None
        public.reach_only_liquid_legions_v2.CopyFrom(
            _public_ll(config.reach_only_llv2, reach_only=True)
        )
        mpc.reach_only_liquid_legions_v2.CopyFrom(
            _system_ll(config.reach_only_llv2, reach_only=True)
        )
    elif protocol is Protocol.HMSS:
        hmss = config.hmss
        assert hmss is not None
        modulus = (
            hmss.reach_and_frequency_ring_modulus
            if measurement_type is MeasurementType.REACH_AND_FREQUENCY
            else hmss.reach_ring_modulus
        )
        public.honest_majority_share_shuffle.ring_modulus = modulus
        public.honest_majority_share_shuffle.noise_mechanism = public_noise(hmss.noise_mechanism)
        mpc.honest_majority_share_shuffle.reach_and_frequency_ring_modulus = (
            hmss.reach_and_frequency_ring_modulus
        )
        mpc.honest_majority_share_shuffle.reach_ring_modulus = hmss.reach_ring_modulus
        mpc.honest_majority_share_shuffle.noise_mechanism = system_noise(hmss.noise_mechanism)
    else:
        trustee = config.trustee
        assert trustee is not None
        mechanism = choice.noise_mechanism or trustee.noise_mechanism
        public.trus_tee.noise_mechanism = public_noise(mechanism)
        mpc.trus_tee.noise_mechanism = system_noise(mechanism)
        if trustee.result_minimum_thresholds is not None:
            mpc.trus_tee.result_minimum_thresholds.min_impressions = (
                trustee.result_minimum_thresholds.min_impressions
            )
            mpc.trus_tee.result_minimum_thresholds.min_users = (
                trustee.result_minimum_thresholds.min_users
            )
    return public, mpc
