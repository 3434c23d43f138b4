"""Starter of Honest Majority Share Shuffle (hmss spec §A.2).

Roles come from the setup config. Each worker also gets, at creation, its 48-byte random seed and a
fresh HPKE key pair for this computation; the private keyset is sealed under the duchy's KEK and
stored before the computation is created (a creation that then finds the computation already there
leaves an unused sealed key behind, which is harmless). The aggregator has neither.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from cmms.api.internal.duchy.protocol.v1 import hmss_pb2
from cmms.api.public.v1 import crypto_pb2
from cmms.crypto.hybrid import HPKE_X25519, HybridPrivateKey, register_tink_hybrid
from cmms.crypto.prng import random_seed
from cmms.crypto.randomness import RandomSource, SystemRandomSource
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
from cmms.protocols.hmss.parameters import HMSS_MECHANISMS
from cmms.protocols.measurement import MeasurementType, NoiseMechanism
from cmms.protocols.stages import ProtocolType, RoleInComputation

Hmss = hmss_pb2.HonestMajorityShareShuffle
HMSS_MINIMUM_EPSILON = 1e-6
# Seals a new private key and returns its key-store id.
StorePrivateKey = Callable[[HybridPrivateKey], Awaitable[str]]


def _generate_key_pair() -> HybridPrivateKey:
    register_tink_hybrid()
    return HybridPrivateKey.generate(HPKE_X25519)


class HmssStarter:
    def __init__(
        self,
        duchy: DuchyContext,
        store_private_key: StorePrivateKey | None,
        *,
        randomness: RandomSource | None = None,
        generate_key_pair: Callable[[], HybridPrivateKey] = _generate_key_pair,
    ) -> None:
        self._duchy = duchy
        self._store_private_key = store_private_key
        self._randomness = randomness or SystemRandomSource()
        self._generate_key_pair = generate_key_pair

    async def creation_request(self, computation: Computation) -> CreateRequest:
        setup = self._duchy.setup.hmss
        if setup is None:
            raise StarterError("this duchy is not set up for Honest Majority Share Shuffle")
        role = setup.role_of(self._duchy.duchy_id)
        if role is None:
            raise StarterError(
                f"duchy {self._duchy.duchy_id} has no role in Honest Majority Share Shuffle"
            )
        config = computation.mpc_protocol_config.honest_majority_share_shuffle
        spec = measurement_spec(computation)
        kind = measurement_type(spec)
        mechanism = noise_mechanism(config.noise_mechanism, HMSS_MECHANISMS, "HMSS")
        parameters = Hmss.Parameters(
            measurement_type=int(kind),  # type: ignore[arg-type]
            maximum_frequency=maximum_frequency(spec, kind),
            ring_modulus=(
                config.reach_and_frequency_ring_modulus
                if kind is MeasurementType.REACH_AND_FREQUENCY
                else config.reach_ring_modulus
            ),
            noise_mechanism=mechanism,  # type: ignore[arg-type]
            vid_sampling_interval_width=spec.vid_sampling_interval.width,
        )
        # Under NONE the protocol takes no DP parameters at all.
        if mechanism != NoiseMechanism.NONE:
            parameters.reach_dp_params.CopyFrom(
                check_dp(reach_dp(spec, kind), "reach", HMSS_MINIMUM_EPSILON)
            )
            if kind is MeasurementType.REACH_AND_FREQUENCY:
                parameters.frequency_dp_params.CopyFrom(
                    check_dp(frequency_dp(spec), "frequency", HMSS_MINIMUM_EPSILON)
                )
        details = base_details(computation, spec, self._duchy)
        hmss = details.honest_majority_share_shuffle
        hmss.role = int(role)  # type: ignore[assignment]
        hmss.parameters.CopyFrom(parameters)
        hmss.non_aggregators.extend(setup.non_aggregators)
        hmss.aggregator = setup.aggregator
        if role is not RoleInComputation.AGGREGATOR:
            hmss.random_seed = random_seed(self._randomness)
            hmss.encryption_key_pair.CopyFrom(await self._new_key_pair())
        initialized = stage_to_proto(ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE, Hmss.INITIALIZED)
        return creation_request(
            computation, ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE, details, initialized
        )

    async def _new_key_pair(self) -> Hmss.EncryptionKeyPair:
        if self._store_private_key is None:
            raise StarterError(
                "an HMSS worker needs a key-encryption key and a private key store to keep its "
                "per-computation key"
            )
        private_key = self._generate_key_pair()
        key_id = await self._store_private_key(private_key)
        return Hmss.EncryptionKeyPair(
            private_key_id=key_id,
            public_key=crypto_pb2.EncryptionPublicKey(
                format=crypto_pb2.EncryptionPublicKey.TINK_KEYSET,
                data=private_key.public_key().keyset(),
            ),
        )
