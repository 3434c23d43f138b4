"""HMSS stage handlers (hmss_trustee §A.2 steps 1-6, duchy_internals §8.5).

| stage             | role         | work                                                        |
|-------------------|--------------|-------------------------------------------------------------|
| INITIALIZED       | any          | publish params (workers: the signed HPKE public key)        |
| SETUP_PHASE       | either worker| send own seed + held EDP seeds to the other worker          |
| SHUFFLE_PHASE     | either worker| open the peer's seeds, combine shares, noise, shuffle, send |
| AGGREGATION_PHASE | aggregator   | add the two shares, histogram, report the result            |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np

from cmms.api.internal.duchy.protocol.v1 import hmss_pb2
from cmms.api.public.v1 import crypto_pb2
from cmms.common import consent
from cmms.crypto.hybrid import HybridPrivateKey
from cmms.duchy.mill.certificates import CertificateSource, SignatureChecker, certificate_owner
from cmms.duchy.mill.context import StageContext
from cmms.duchy.mill.errors import PermanentError, TransientError
from cmms.duchy.mill.handlers import Handler, HandlerTable
from cmms.duchy.mill.kingdom import RequisitionParams
from cmms.duchy.mill.protocol_params import measurement_type, noise_mechanism, privacy
from cmms.duchy.mill.results import MeasurementResult
from cmms.duchy.mill.tokens import fulfilled_here, input_paths
from cmms.protocols.hmss.actions import (
    action_for,
    aggregation_function,
    shuffle_function,
)
from cmms.protocols.hmss.aggregation_phase import AggregationPhaseRequest, ReachAndFrequencyResult
from cmms.protocols.hmss.parameters import (
    FrequencyVectorParams,
    NoiseConfig,
    maximum_combined_frequency,
)
from cmms.protocols.hmss.payloads import (
    SecretSeed,
    decode_aggregation_phase_input,
    decode_frequency_vector,
    decode_shuffle_phase_input,
    encode_aggregation_phase_input,
)
from cmms.protocols.hmss.setup_phase import (
    SetupPhaseRequest,
    assemble_shuffle_phase_request,
    run_setup_phase,
)
from cmms.protocols.hmss.stages import Role, Stage
from cmms.protocols.measurement import MeasurementType, NoiseMechanism
from cmms.protocols.stages import ProtocolType
from cmms.storage import BlobStoreError

Hmss = hmss_pb2.HonestMajorityShareShuffle
Methodology = MeasurementResult.Methodology


class PrivateKeys(Protocol):
    """This duchy's per-computation HPKE private keys (sealed under its KEK)."""

    async def load(self, key_id: str) -> HybridPrivateKey: ...


class HmssHandlers:
    def __init__(
        self,
        private_keys: PrivateKeys | None,
        certificates: CertificateSource,
        signatures: SignatureChecker,
    ) -> None:
        self._private_keys = private_keys
        self._certificates = certificates
        self._signatures = signatures

    def table(self) -> HandlerTable:
        w1, w2, a = Role.FIRST_NON_AGGREGATOR, Role.SECOND_NON_AGGREGATOR, Role.AGGREGATOR
        handlers: dict[tuple[int, int], Handler] = {
            (Stage.INITIALIZED, role): self.initialized for role in (w1, w2, a)
        }
        handlers.update({(Stage.SETUP_PHASE, role): self.setup_phase for role in (w1, w2)})
        handlers.update({(Stage.SHUFFLE_PHASE, role): self.shuffle_phase for role in (w1, w2)})
        handlers[(Stage.AGGREGATION_PHASE, a)] = self.aggregation_phase
        return HandlerTable(ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE, handlers)

    # ------------------------------------------------------------------------- stages

    async def initialized(self, ctx: StageContext) -> None:
        params = RequisitionParams(
            honest_majority_share_shuffle=RequisitionParams.HonestMajorityShareShuffle()
        )
        if ctx.role != Role.AGGREGATOR:
            public_key = ctx.details.encryption_key_pair.public_key
            if not public_key.data:
                raise PermanentError("this worker has no HPKE key pair for the computation")
            signed = ctx.services.signer.sign(public_key)
            hmss = params.honest_majority_share_shuffle
            # The key is published as the exact bytes that were signed.
            hmss.tink_public_key = signed.message.value
            hmss.tink_public_key_signature = signed.signature
            hmss.tink_public_key_signature_algorithm_oid = signed.signature_algorithm_oid
        await ctx.set_requisition_params(params)
        await ctx.advance()

    async def setup_phase(self, ctx: StageContext) -> None:
        role = Role(ctx.role)
        action = action_for(role, Stage.SETUP_PHASE)
        assert action.recipient is not None and action.description is not None
        assert action.expected_peer_stage is not None
        request = SetupPhaseRequest(role, ctx.details.random_seed, _held_seeds(ctx))

        async def compute() -> bytes:
            return ctx.compute(run_setup_phase, request).payload

        payload = await ctx.output_or(compute)
        peer = _duchy_of(ctx, action.recipient)
        await ctx.send(peer, action.description, action.expected_peer_stage, payload)
        if role is Role.SECOND_NON_AGGREGATOR:
            # The first worker's input arrived before this stage; the shuffle phase reads it.
            await ctx.advance(inputs=input_paths(ctx.token))
        else:
            await ctx.advance()

    async def shuffle_phase(self, ctx: StageContext) -> None:
        role = Role(ctx.role)
        action = action_for(role, Stage.SHUFFLE_PHASE)
        assert action.description is not None and action.expected_peer_stage is not None
        payload = await ctx.output_or(lambda: self._shuffle(ctx, role))
        await ctx.send(
            ctx.details.aggregator, action.description, action.expected_peer_stage, payload
        )
        await ctx.finish()

    async def aggregation_phase(self, ctx: StageContext) -> None:
        parameters = ctx.details.parameters
        q = parameters.ring_modulus
        inputs = await ctx.read_inputs()
        if len(inputs) != 2:
            raise PermanentError(f"aggregation needs 2 worker inputs, got {len(inputs)}")
        decoded = [decode_aggregation_phase_input(data, q) for data in inputs]
        if decoded[0].register_count != decoded[1].register_count:
            raise PermanentError(
                f"the workers report different register counts ({decoded[0].register_count}, "
                f"{decoded[1].register_count})"
            )
        register_count = decoded[0].register_count
        kind = measurement_type(parameters.measurement_type)
        request = AggregationPhaseRequest(
            params=FrequencyVectorParams(
                register_count,
                maximum_combined_frequency(
                    parameters.maximum_frequency, len(ctx.token.requisitions)
                ),
                q,
            ),
            share_vectors=(decoded[0].share_vector, decoded[1].share_vector),
            vid_sampling_interval_width=parameters.vid_sampling_interval_width,
            maximum_frequency=parameters.maximum_frequency,
            noise=_noise(parameters),
        )
        outcome = ctx.compute(aggregation_function(kind), request)
        methodology = Methodology(
            honest_majority_share_shuffle=Methodology.HonestMajorityShareShuffle(
                frequency_vector_size=register_count
            )
        )
        result = MeasurementResult(
            reach=MeasurementResult.Reach(value=outcome.reach, methodology=methodology)
        )
        if isinstance(outcome, ReachAndFrequencyResult):
            result.frequency.relative_frequency_distribution.update(outcome.frequency_distribution)
            result.frequency.methodology.CopyFrom(methodology)
        await ctx.report_result(result)
        await ctx.finish()

    # ------------------------------------------------------------------------- helpers

    async def _shuffle(self, ctx: StageContext, role: Role) -> bytes:
        details = ctx.details
        parameters = details.parameters
        q = parameters.ring_modulus
        inputs = await ctx.read_inputs()
        if len(inputs) != 1:
            raise PermanentError(f"the shuffle phase needs the peer's input, got {len(inputs)}")
        peer_input = decode_shuffle_phase_input(inputs[0])
        private_key = await self._private_key(details.encryption_key_pair.private_key_id)
        seeds = {
            seed.requisition_id: await self._open_seed(private_key, seed)
            for seed in peer_input.secret_seeds
        }
        data_shares: dict[str, np.ndarray] = {}
        for requisition in fulfilled_here(ctx.token):
            body = await ctx.read_requisition(requisition)
            data_shares[requisition.external_key.external_requisition_id] = decode_frequency_vector(
                body, q
            )
        request = assemble_shuffle_phase_request(
            role,
            details.random_seed,
            peer_input,
            data_shares,
            lambda seed: seeds[seed.requisition_id],
            parameters.maximum_frequency,
            q,
            _noise(parameters),
        )
        kind = measurement_type(parameters.measurement_type)
        response = ctx.compute(shuffle_function(kind), request, ctx.randomness.derive("noise"))
        return bytes(
            encode_aggregation_phase_input(response.share_vector, request.params.register_count)
        )

    async def _private_key(self, key_id: str) -> HybridPrivateKey:
        if self._private_keys is None or not key_id:
            raise PermanentError("no private key store holds this worker's HPKE key")
        try:
            return await self._private_keys.load(key_id)
        except KeyError as error:
            raise PermanentError(f"private key {key_id} is not in the key store") from error
        except (BlobStoreError, OSError) as error:
            raise TransientError(f"cannot read private key {key_id}: {error}") from error

    async def _open_seed(self, private_key: HybridPrivateKey, seed: SecretSeed) -> bytes:
        """Decrypt an EDP's seed and check that the EDP signed it."""
        encrypted = crypto_pb2.EncryptedMessage(
            ciphertext=seed.secret_seed_ciphertext, type_url=consent.SIGNED_MESSAGE_TYPE_URL
        )
        try:
            signed = consent.decrypt_signed(encrypted, private_key)
            random_seed = consent.unpack(signed, crypto_pb2.RandomSeed)
        except consent.ConsentSignalError as error:
            raise PermanentError(
                f"seed of requisition {seed.requisition_id} does not open: {error}"
            ) from error
        name = seed.data_provider_certificate
        certificate = await self._certificates.get(name)
        self._signatures.check(
            certificate,
            signed.message.value,
            signed.signature,
            signed.signature_algorithm_oid,
            certificate_owner(name),
        )
        data: bytes = random_seed.data
        return data


def _held_seeds(ctx: StageContext) -> tuple[SecretSeed, ...]:
    """The encrypted seeds of the requisitions fulfilled here, for the other worker."""
    seeds = []
    for requisition in fulfilled_here(ctx.token):
        hmss = requisition.details.protocol.honest_majority_share_shuffle
        requisition_id = requisition.external_key.external_requisition_id
        if not hmss.secret_seed_ciphertext:
            raise PermanentError(f"requisition {requisition_id} has no secret seed")
        seeds.append(
            SecretSeed(
                requisition_id,
                hmss.secret_seed_ciphertext,
                hmss.register_count,
                hmss.data_provider_certificate,
            )
        )
    return tuple(seeds)


def _duchy_of(ctx: StageContext, role: Role) -> str:
    details = ctx.details
    by_role: Mapping[Role, str] = {
        Role.FIRST_NON_AGGREGATOR: details.non_aggregators[0] if details.non_aggregators else "",
        Role.SECOND_NON_AGGREGATOR: (
            details.non_aggregators[1] if len(details.non_aggregators) > 1 else ""
        ),
        Role.AGGREGATOR: details.aggregator,
    }
    duchy = by_role[role]
    if not duchy:
        raise PermanentError(f"the computation names no {role.name} duchy")
    return duchy


def _noise(parameters: Hmss.Parameters) -> NoiseConfig:
    mechanism = noise_mechanism(parameters.noise_mechanism)
    if mechanism is NoiseMechanism.NONE:
        return NoiseConfig()
    frequency = (
        privacy(parameters.frequency_dp_params)
        if measurement_type(parameters.measurement_type) is MeasurementType.REACH_AND_FREQUENCY
        else None
    )
    return NoiseConfig(mechanism, privacy(parameters.reach_dp_params), frequency)
