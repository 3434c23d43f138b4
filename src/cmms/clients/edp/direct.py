"""Direct (single-EDP) measurements: the EDP computes, noises, signs and encrypts the result itself.

VIDs are sampled with the LL VID sampler (Direct requires a non-wrapping interval) and reach is
scaled back up by the interval width. The noise mechanism is the first of the EDP's preferences
that the protocol config offers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cmms.api.public.v1 import common_pb2, measurements_pb2, protocol_config_pb2, requisitions_pb2
from cmms.clients.edp.payloads import sampled_for_liquid_legions
from cmms.clients.edp.verification import SPEC_INVALID, RequisitionRefused, VerifiedRequisition
from cmms.clients.identity import PartyKeys
from cmms.common import consent
from cmms.crypto.randomness import RandomSource
from cmms.dp.errors import NoiseParameterError
from cmms.dp.gaussian import GaussianResultNoiser
from cmms.dp.parameters import PrivacyParams
from cmms.dp.samplers import numpy_generator

NoiseMechanism = common_pb2.NoiseMechanism
Result = measurements_pb2.Measurement.Result
Direct = protocol_config_pb2.ProtocolConfig.Direct
DEFAULT_NOISE_PREFERENCE: tuple[int, ...] = (
    common_pb2.NONE,
    common_pb2.CONTINUOUS_GAUSSIAN,
    common_pb2.CONTINUOUS_LAPLACE,
)


def choose_noise_mechanism(offered: Sequence[int], preference: Sequence[int]) -> int:
    """The first preferred mechanism on offer (an empty offer means anything goes)."""
    for mechanism in preference:
        if not offered or mechanism in offered:
            return mechanism
    raise RequisitionRefused(SPEC_INVALID, "none of the offered noise mechanisms is supported")


class _Noiser:
    def __init__(
        self,
        mechanism: int,
        reach_privacy: common_pb2.DifferentialPrivacyParams,
        frequency_privacy: common_pb2.DifferentialPrivacyParams | None,
        random: RandomSource,
    ) -> None:
        self._mechanism = mechanism
        self._reach_privacy = reach_privacy
        self._frequency_privacy = frequency_privacy
        self._generator = numpy_generator(random)
        self._gaussian: GaussianResultNoiser | None = None
        try:
            if mechanism == common_pb2.CONTINUOUS_GAUSSIAN:
                self._gaussian = GaussianResultNoiser(
                    PrivacyParams(reach_privacy.epsilon, reach_privacy.delta),
                    PrivacyParams(frequency_privacy.epsilon, frequency_privacy.delta)
                    if frequency_privacy is not None
                    else None,
                    1,
                    random,
                )
            elif mechanism == common_pb2.CONTINUOUS_LAPLACE:
                for params in (reach_privacy, frequency_privacy):
                    if params is not None and not params.epsilon > 0:
                        raise NoiseParameterError(f"epsilon must be positive, got {params.epsilon}")
        except NoiseParameterError as exc:
            raise RequisitionRefused(SPEC_INVALID, f"bad privacy parameters: {exc}") from exc

    def _laplace(self, epsilon: float) -> int:
        return round(float(self._generator.laplace(0.0, 1.0 / epsilon)))

    def reach(self, value: int) -> int:
        if self._gaussian is not None:
            return self._gaussian.noise_reach(value)
        if self._mechanism == common_pb2.CONTINUOUS_LAPLACE:
            return value + self._laplace(self._reach_privacy.epsilon)
        return value

    def bucket(self, index: int, count: int) -> int:
        if self._gaussian is not None:
            return self._gaussian.noise_frequency_bucket(index, count)
        if self._mechanism == common_pb2.CONTINUOUS_LAPLACE and self._frequency_privacy is not None:
            return max(0, count + self._laplace(self._frequency_privacy.epsilon))
        return count


def _methodology(offered: Sequence[int], deterministic: int) -> Result.Methodology:
    methodology = Result.Methodology()
    field = (
        "deterministic_count_distinct"
        if deterministic == Direct.DETERMINISTIC_COUNT_DISTINCT
        else "deterministic_distribution"
    )
    if not offered or deterministic in offered:
        getattr(methodology, field).SetInParent()
    else:
        methodology.custom_direct.SetInParent()
    return methodology


def direct_result(
    verified: VerifiedRequisition,
    events: np.ndarray,
    random: RandomSource,
    noise_preference: Sequence[int] = DEFAULT_NOISE_PREFERENCE,
) -> measurements_pb2.Measurement.Result:
    """Reach (and for R&F the relative frequency distribution) of this EDP's sampled events."""
    spec = verified.measurement_spec
    direct = verified.requisition.protocol_config.direct
    interval = spec.vid_sampling_interval
    if interval.start + interval.width > 1 + 1e-6:
        raise RequisitionRefused(
            SPEC_INVALID, "a direct measurement cannot use a wrapping interval"
        )
    mechanism = choose_noise_mechanism(list(direct.noise_mechanisms), noise_preference)
    if verified.is_reach_and_frequency:
        reach_privacy = spec.reach_and_frequency.reach_privacy_params
        frequency_privacy: common_pb2.DifferentialPrivacyParams | None = (
            spec.reach_and_frequency.frequency_privacy_params
        )
    else:
        reach_privacy, frequency_privacy = spec.reach.privacy_params, None
    noiser = _Noiser(mechanism, reach_privacy, frequency_privacy, random)

    sampled = sampled_for_liquid_legions(verified, events)
    _, counts = np.unique(sampled, return_counts=True)
    width = float(np.float32(interval.width))
    methodologies = list(direct.methodologies)
    result = Result()
    result.reach.value = max(0, round(noiser.reach(int(counts.size)) / width))
    result.reach.noise_mechanism = mechanism  # type: ignore[assignment]
    result.reach.methodology.CopyFrom(
        _methodology(methodologies, Direct.DETERMINISTIC_COUNT_DISTINCT)
    )
    if verified.is_reach_and_frequency:
        max_frequency = verified.max_frequency
        histogram = np.bincount(np.minimum(counts, max_frequency), minlength=max_frequency + 1)
        noised = [noiser.bucket(f - 1, int(histogram[f])) for f in range(1, max_frequency + 1)]
        total = sum(noised)
        for frequency, count in enumerate(noised, start=1):
            result.frequency.relative_frequency_distribution[frequency] = (
                count / total if total else 0.0
            )
        result.frequency.noise_mechanism = mechanism  # type: ignore[assignment]
        result.frequency.methodology.CopyFrom(
            _methodology(methodologies, Direct.DETERMINISTIC_DISTRIBUTION)
        )
    return result


def direct_fulfillment_request(
    verified: VerifiedRequisition, result: measurements_pb2.Measurement.Result, keys: PartyKeys
) -> requisitions_pb2.FulfillDirectRequisitionRequest:
    """The result signed by the EDP and encrypted to the consumer's measurement public key."""
    requisition = verified.requisition
    signed = consent.sign_message(result, keys.signing_key)
    encrypted = consent.encrypt_signed(
        signed, verified.measurement_spec.measurement_public_key.data
    )
    request = requisitions_pb2.FulfillDirectRequisitionRequest(
        name=requisition.name,
        encrypted_result=encrypted,
        nonce=verified.nonce,
        certificate=requisition.data_provider_certificate,
        etag=requisition.etag,
    )
    request.fulfillment_context.build_label = "cmms-edp-simulator"
    return request
