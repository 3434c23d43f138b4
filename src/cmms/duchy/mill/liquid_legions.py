"""What LLv2 and reach-only LLv2 share: the per-computation ElGamal key (INITIALIZATION_PHASE),
the checks before confirming (CONFIRMATION_PHASE), and reading ring, keys and parameters
(llv2 spec §2, §7; duchy_internals §8.5).

The secret key never leaves the duchy: it is kept in the computation details, sealed under the
duchy's key-encryption key when one is configured, and reused when the stage runs again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from cmms.api.internal.duchy.protocol.v1 import common_pb2
from cmms.api.internal.duchy.v1 import computation_details_pb2
from cmms.api.public.v1 import crypto_pb2, measurement_spec_pb2
from cmms.common import consent
from cmms.crypto import elgamal, group, signing
from cmms.crypto.errors import CryptoError
from cmms.crypto.keystore import Aead
from cmms.dp.parameters import PrivacyParams
from cmms.duchy.mill.certificates import SignatureChecker
from cmms.duchy.mill.context import StageContext
from cmms.duchy.mill.errors import PermanentError
from cmms.duchy.mill.kingdom import RequisitionParams
from cmms.duchy.mill.protocol_params import privacy
from cmms.duchy.mill.tokens import PROTOCOL_FIELDS
from cmms.protocols.liquid_legions.keys import DuchyKeys, ring_keys
from cmms.protocols.liquid_legions.noise import NoiseConfig, NoiseMechanism, ReachNoiseConfig
from cmms.protocols.liquid_legions.parallel import ExecutionOptions
from cmms.protocols.measurement import NoiseMechanism as SystemNoiseMechanism

ElGamalKeyPair = common_pb2.ElGamalKeyPair
KEY_ASSOCIATED_DATA = b"cmms duchy el gamal secret key"
# Liquid Legions noise comes in two flavours; a continuous Gaussian is drawn discretely.
_LL_MECHANISMS = {
    SystemNoiseMechanism.GEOMETRIC: NoiseMechanism.GEOMETRIC,
    SystemNoiseMechanism.DISCRETE_GAUSSIAN: NoiseMechanism.DISCRETE_GAUSSIAN,
    SystemNoiseMechanism.CONTINUOUS_GAUSSIAN: NoiseMechanism.DISCRETE_GAUSSIAN,
}


class SecretKeySealer:
    """Seals ElGamal secrets under the KEK; without one they are stored as they are."""

    def __init__(self, kek: Aead | None) -> None:
        self._kek = kek

    def seal(self, pair: elgamal.KeyPair) -> ElGamalKeyPair:
        public = crypto_pb2.ElGamalPublicKey(generator=group.GENERATOR, element=pair.public)
        if self._kek is None:
            return ElGamalKeyPair(public_key=public, secret_key=pair.secret_bytes)
        wrapped = self._kek.encrypt(pair.secret_bytes, KEY_ASSOCIATED_DATA)
        return ElGamalKeyPair(public_key=public, wrapped_secret_key=wrapped)

    def secret(self, stored: ElGamalKeyPair) -> int:
        kind = stored.WhichOneof("secret")
        if kind == "secret_key":
            data = stored.secret_key
        elif kind == "wrapped_secret_key":
            if self._kek is None:
                raise PermanentError("the ElGamal secret is sealed and no KEK is configured")
            try:
                data = self._kek.decrypt(stored.wrapped_secret_key, KEY_ASSOCIATED_DATA)
            except Exception as error:  # Tink raises its own error type for a wrong key.
                raise PermanentError(f"cannot unseal the ElGamal secret: {error}") from error
        else:
            raise PermanentError("this duchy has no ElGamal key for the computation yet")
        try:
            return elgamal.secret_from_bytes(data)
        except CryptoError as error:
            raise PermanentError(f"stored ElGamal secret is invalid: {error}") from error


@dataclass(frozen=True)
class Ring:
    """The participants in ring order (aggregator last) and this duchy's place in it."""

    duchy_ids: tuple[str, ...]
    elements: tuple[bytes, ...]
    position: int

    @property
    def aggregator(self) -> str:
        return self.duchy_ids[-1]

    @property
    def next_duchy(self) -> str:
        return self.duchy_ids[(self.position + 1) % len(self.duchy_ids)]


def ring_of(ctx: StageContext) -> Ring:
    participants = ctx.details.participants
    ids = tuple(p.duchy_id for p in participants)
    if ctx.options.duchy_id not in ids:
        raise PermanentError(f"duchy {ctx.options.duchy_id} is not in the participant list {ids}")
    return Ring(
        ids, tuple(p.public_key.element for p in participants), ids.index(ctx.options.duchy_id)
    )


class LiquidLegionsCommon:
    def __init__(self, sealer: SecretKeySealer, signatures: SignatureChecker) -> None:
        self.sealer = sealer
        self._signatures = signatures

    # ------------------------------------------------------------------------- stages

    async def initialization_phase(self, ctx: StageContext) -> None:
        """Make (or reuse) this computation's key pair and publish the signed public key."""
        stored = ctx.details.local_el_gamal_key
        if not stored.HasField("public_key"):
            pair = elgamal.generate_key_pair(ctx.randomness.derive("el-gamal-key"))
            details = _copy(ctx.token.computation_details)
            _protocol(details, ctx).local_el_gamal_key.CopyFrom(self.sealer.seal(pair))
            await ctx.update_details(details)
            stored = ctx.details.local_el_gamal_key
        signed = ctx.services.signer.sign(stored.public_key)
        params = RequisitionParams()
        published = getattr(params, PROTOCOL_FIELDS[ctx.protocol])
        published.el_gamal_public_key = signed.message.value
        published.el_gamal_public_key_signature = signed.signature
        published.el_gamal_public_key_signature_algorithm_oid = signed.signature_algorithm_oid
        await ctx.set_requisition_params(params)
        await ctx.advance()

    async def confirmation_phase(self, ctx: StageContext) -> None:
        """Check every EDP took part and every duchy's key is signed by it; then confirm."""
        _check_participation(ctx)
        ring = ring_of(ctx)
        self._check_keys(ctx, ring)
        details = _copy(ctx.token.computation_details)
        protocol = _protocol(details, ctx)
        full = elgamal.combine_public_keys(ring.elements)
        partial = (
            full
            if ring.position == len(ring.elements) - 1
            else elgamal.combine_public_keys(ring.elements[ring.position + 1 :])
        )
        protocol.combined_public_key.CopyFrom(_public_key(full))
        protocol.partially_combined_public_key.CopyFrom(_public_key(partial))
        await ctx.update_details(details)
        await ctx.confirm_participation()
        await ctx.advance()

    # ------------------------------------------------------------------------- helpers

    def keys(self, ctx: StageContext) -> DuchyKeys:
        ring = ring_of(ctx)
        secret = self.sealer.secret(ctx.details.local_el_gamal_key)
        return ring_keys(ring.elements, ring.position, secret)

    def _check_keys(self, ctx: StageContext, ring: Ring) -> None:
        own = ctx.details.local_el_gamal_key.public_key.element
        for participant in ctx.details.participants:
            if (
                participant.duchy_id == ctx.options.duchy_id
                and participant.public_key.element != own
            ):
                raise PermanentError("the ring lists another key for this duchy")
            if participant.public_key.generator != group.GENERATOR:
                raise PermanentError(f"{participant.duchy_id}'s key uses another generator")
            try:
                published = crypto_pb2.ElGamalPublicKey.FromString(
                    participant.serialized_public_key
                )
                certificate = signing.load_certificate(participant.duchy_certificate_der)
            except (DecodeError, CryptoError) as error:
                raise PermanentError(
                    f"{participant.duchy_id}'s key or certificate does not parse: {error}"
                ) from error
            if published.element != participant.public_key.element:
                raise PermanentError(f"{participant.duchy_id}'s signed key differs from its key")
            self._signatures.check(
                certificate,
                participant.serialized_public_key,
                participant.public_key_signature,
                participant.public_key_signature_algorithm_oid,
                f"duchies/{participant.duchy_id}",
            )


def execution_options(ctx: StageContext) -> ExecutionOptions:
    return ExecutionOptions(parallelism=ctx.options.parallelism)


def measurement_spec(ctx: StageContext) -> measurement_spec_pb2.MeasurementSpec:
    try:
        return measurement_spec_pb2.MeasurementSpec.FromString(
            ctx.token.computation_details.kingdom_computation.measurement_spec
        )
    except DecodeError as error:
        raise PermanentError(f"the stored measurement spec does not parse: {error}") from error


def vid_sampling_width(ctx: StageContext) -> float:
    width = measurement_spec(ctx).vid_sampling_interval.width
    return float(width) if width else 1.0


def noise_config(
    noise: common_pb2.LiquidLegionsNoiseConfig, with_frequency: bool
) -> NoiseConfig | None:
    """The stored noise config, or None when the computation adds no noise."""
    try:
        mechanism = _LL_MECHANISMS.get(SystemNoiseMechanism(noise.noise_mechanism))
    except ValueError:
        mechanism = None
    if mechanism is None:
        return None
    reach: ReachNoiseConfig | None = None
    if all(
        noise.HasField(name)
        for name in ("blinded_histogram_noise", "publisher_noise", "reach_noise")
    ):
        reach = ReachNoiseConfig(
            privacy(noise.blinded_histogram_noise),
            privacy(noise.publisher_noise),
            privacy(noise.reach_noise),
        )
    frequency: PrivacyParams | None = (
        privacy(noise.frequency_noise)
        if with_frequency and noise.HasField("frequency_noise")
        else None
    )
    if reach is None and frequency is None:
        return None
    return NoiseConfig(mechanism, reach, frequency)


async def own_requisitions(ctx: StageContext) -> tuple[bytes, ...]:
    """The encrypted sketches EDPs uploaded to this duchy, in requisition order."""
    return tuple([await ctx.read_requisition(r) for r in ctx.token.requisitions if r.path])


async def single_input(ctx: StageContext) -> bytes:
    inputs = await ctx.read_inputs()
    if len(inputs) != 1:
        raise PermanentError(f"{ctx.stage_name} expects one input, has {len(inputs)}")
    return inputs[0]


def _check_participation(ctx: StageContext) -> None:
    expected = set(measurement_spec(ctx).nonce_hashes)
    seen: set[bytes] = set()
    for requisition in ctx.token.requisitions:
        requisition_id = requisition.external_key.external_requisition_id
        details = requisition.details
        if not details.nonce:
            raise PermanentError(f"requisition {requisition_id} has no nonce: not fulfilled")
        seen.add(consent.nonce_hash(details.nonce))
        if details.external_fulfilling_duchy_id == ctx.options.duchy_id and not requisition.path:
            raise PermanentError(
                f"requisition {requisition_id} was to be fulfilled here and has no data"
            )
    if seen != expected:
        raise PermanentError("the requisitions' nonces do not match the measurement spec")


def _public_key(element: bytes) -> crypto_pb2.ElGamalPublicKey:
    return crypto_pb2.ElGamalPublicKey(generator=group.GENERATOR, element=element)


def _copy(
    details: computation_details_pb2.ComputationDetails,
) -> computation_details_pb2.ComputationDetails:
    copy = computation_details_pb2.ComputationDetails()
    copy.CopyFrom(details)
    return copy


def _protocol(details: computation_details_pb2.ComputationDetails, ctx: StageContext) -> Any:
    """The LLv2 or reach-only member of `details` (both have the same key fields)."""
    return getattr(details, PROTOCOL_FIELDS[ctx.protocol])
