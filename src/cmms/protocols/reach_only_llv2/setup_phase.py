"""Reach-only LLv2 setup phase (spec §5R).

Each duchy appends Z + 2 noise registers and one trailing "excess noise" ciphertext encrypting the
number of distinct blinded-histogram ids it made. The aggregator strips the trailing ciphertext of
every received payload, concatenates the registers and sums all D excess ciphertexts into one.
"""

from __future__ import annotations

from dataclasses import dataclass

from cmms.crypto import elgamal
from cmms.crypto.elgamal import CIPHERTEXT_SIZE
from cmms.crypto.randomness import RandomSource
from cmms.protocols.liquid_legions import named_points
from cmms.protocols.liquid_legions.encryption import encrypt_records
from cmms.protocols.liquid_legions.keys import DuchyKeys
from cmms.protocols.liquid_legions.parallel import ExecutionOptions
from cmms.protocols.liquid_legions.parameters import LiquidLegionsParameters
from cmms.protocols.liquid_legions.records import (
    REACH_ONLY_REGISTER_SIZE,
    record_count,
    split_trailing_ciphertext,
)
from cmms.protocols.liquid_legions.setup_noise import setup_noise
from cmms.protocols.liquid_legions.shuffle import shuffle_records
from cmms.protocols.liquid_legions.tables import public_key


@dataclass(frozen=True)
class SetupPhaseRequest:
    """Own requisition payloads and, at the aggregator, the D-1 received setup outputs."""

    parameters: LiquidLegionsParameters
    keys: DuchyKeys
    requisitions: tuple[bytes, ...]
    received: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class SetupPhaseResponse:
    """The shuffled 66-byte registers followed by one excess-noise ciphertext."""

    payload: bytes


def encrypt_integer(value: int, full_key: bytes, random: RandomSource) -> bytes:
    """`EncryptInteger`: an encryption of zero for 0, else `value·Enc(P)`."""
    key = public_key(full_key)
    if value == 0:
        return elgamal.encrypt_zero_one(key, random)
    with elgamal.decode_ciphertexts(
        elgamal.encrypt_one(key, named_points.unit_point(), random)
    ) as unit:
        elgamal.multiply(unit, value, out=unit)
        return elgamal.encode_ciphertexts(unit)


def _sum_ciphertexts(cts: list[bytes]) -> bytes:
    with elgamal.decode_ciphertexts(b"".join(cts)) as decoded:
        total = decoded.take([0])
        with total:
            for i in range(1, len(cts)):
                with decoded.take([i]) as other:
                    elgamal.add(total, other, out=total)
            return elgamal.encode_ciphertexts(total)


def setup_phase(
    request: SetupPhaseRequest,
    random: RandomSource,
    options: ExecutionOptions = ExecutionOptions(),
) -> SetupPhaseResponse:
    """Append noise registers, shuffle, and append the (summed at A) excess-noise ciphertext."""
    parameters, keys = request.parameters, request.keys
    for i, blob in enumerate(request.requisitions):
        record_count(blob, REACH_ONLY_REGISTER_SIZE, f"requisition {i}")
    parts = list(request.requisitions)
    received_noise: list[bytes] = []
    for i, blob in enumerate(request.received):
        registers, trailing = split_trailing_ciphertext(
            blob, REACH_ONLY_REGISTER_SIZE, f"received setup output {i}"
        )
        parts.append(registers)
        received_noise.append(trailing)
    noisers = parameters.reach_noisers
    excess = 0
    if noisers is not None:
        noise = setup_noise(
            noisers, parameters.requisitions, random.derive("noise"), reach_only=True
        )
        excess = noise.blinded_histogram_ids
        parts.append(
            encrypt_records(
                [[register[0] for register in noise.registers]],
                [keys.full_key],
                random.derive("noise/encrypt"),
                "setup_noise",
                options,
            )
        )
    own_noise = encrypt_integer(excess, keys.full_key, random.derive("excess"))
    # Decoding the received noise ciphertexts while summing validates them.
    noise_ct = _sum_ciphertexts([own_noise, *received_noise]) if received_noise else own_noise
    registers = shuffle_records(b"".join(parts), REACH_ONLY_REGISTER_SIZE, random.derive("shuffle"))
    assert len(noise_ct) == CIPHERTEXT_SIZE
    return SetupPhaseResponse(registers + noise_ct)
