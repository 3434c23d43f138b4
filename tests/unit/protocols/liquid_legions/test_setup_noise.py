"""Setup-noise totals and composition against the reference vectors (spec §10)."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from cmms.crypto import elgamal, group
from cmms.crypto.randomness import SeededRandomSource
from cmms.dp import PrivacyParams
from cmms.protocols.liquid_legions import named_points
from cmms.protocols.liquid_legions.keys import ring_keys
from cmms.protocols.liquid_legions.noise import NoiseConfig, NoiseMechanism, ReachNoiseConfig
from cmms.protocols.liquid_legions.parameters import LiquidLegionsParameters
from cmms.protocols.liquid_legions.records import REGISTER_SIZE
from cmms.protocols.liquid_legions.setup_noise import setup_noise
from cmms.protocols.llv2.parameters import ReachAndFrequencyParameters
from cmms.protocols.llv2.setup_phase import SetupPhaseRequest, setup_phase
from cmms.protocols.reach_only_llv2.setup_phase import SetupPhaseRequest as RoSetupRequest
from cmms.protocols.reach_only_llv2.setup_phase import setup_phase as ro_setup_phase

VECTORS = json.loads((Path(__file__).parents[3] / "vectors" / "llv2_protocol.json").read_text())[
    "setup_noise"
]


def _privacy(entry: dict[str, float]) -> PrivacyParams:
    return PrivacyParams(entry["epsilon"], math.exp(entry["delta_log"]))


def _config(mechanism: NoiseMechanism) -> NoiseConfig:
    return NoiseConfig(
        mechanism,
        ReachNoiseConfig(
            blinded_histogram=_privacy(VECTORS["blinded_histogram"]),
            publisher=_privacy(VECTORS["publisher"]),
            global_reach=_privacy(VECTORS["global_reach"]),
        ),
    )


def _parameters(mechanism: NoiseMechanism) -> LiquidLegionsParameters:
    return LiquidLegionsParameters(
        decay_rate=12,
        max_size=100_000,
        duchies=VECTORS["duchies"],
        requisitions=VECTORS["requisitions"],
        noise=_config(mechanism),
    )


@pytest.mark.parametrize(
    ("mechanism", "name"),
    [
        (NoiseMechanism.GEOMETRIC, "geometric"),
        (NoiseMechanism.DISCRETE_GAUSSIAN, "discrete_gaussian"),
    ],
)
def test_offsets_and_totals(mechanism: NoiseMechanism, name: str) -> None:
    noisers = _parameters(mechanism).reach_noisers
    assert noisers is not None
    offsets = [
        noisers.blinded_histogram.offset,
        noisers.publisher.offset,
        noisers.global_reach.offset,
    ]
    assert offsets == VECTORS[name]["offsets"]
    for seed in range(3):
        rf = setup_noise(noisers, 3, SeededRandomSource(seed))
        ro = setup_noise(noisers, 3, SeededRandomSource(seed), reach_only=True)
        assert len(rf.registers) == VECTORS[name]["total"]
        assert len(ro.registers) == VECTORS[name]["reach_only_total"]
        assert ro.publisher_registers >= 1 and ro.padding_registers >= 1


def test_deterministic_geometric_composition() -> None:
    noisers = _parameters(NoiseMechanism.GEOMETRIC).reach_noisers
    assert noisers is not None
    noise = setup_noise(noisers, 3, SeededRandomSource("composition"))
    expected = VECTORS["geometric"]
    assert noise.blinded_histogram_registers == expected["blinded_histogram_registers"]
    assert noise.publisher_registers == expected["publisher_registers"]
    assert noise.reach_registers == expected["reach_registers"]
    assert noise.padding_registers == expected["padding_registers"]
    # n_k = 7 distinct ids for each k = 1..3, each id repeated k times.
    assert noise.blinded_histogram_ids == 21
    ids = Counter(r[0] for r in noise.registers if r[1] == named_points.blinded_histogram_key())
    assert sorted(Counter(ids.values()).items()) == [(1, 7), (2, 7), (3, 7)]


def test_setup_phase_output_decrypts_to_the_noise_classes() -> None:
    random = SeededRandomSource("setup")
    pairs = [elgamal.generate_key_pair(random) for _ in range(3)]
    keys = ring_keys([p.public for p in pairs], 0, pairs[0].secret)
    secret = sum(p.secret for p in pairs) % group.ORDER
    common = _parameters(NoiseMechanism.GEOMETRIC)
    parameters = ReachAndFrequencyParameters(
        decay_rate=12,
        max_size=100_000,
        duchies=3,
        requisitions=3,
        noise=common.noise,
        max_frequency=10,
    )
    payload = setup_phase(SetupPhaseRequest(parameters, keys, ()), random).registers
    assert len(payload) == VECTORS["geometric"]["total"] * REGISTER_SIZE
    fields = [
        elgamal.decrypt_to_bytes(
            elgamal.decode_ciphertexts(payload, offset=66 * f, stride=REGISTER_SIZE), secret
        )
        for f in range(3)
    ]
    index, key, count = fields
    assert key == count  # noise counts repeat the key point
    kinds: Counter[str] = Counter()
    for i, k in zip(index, key, strict=True):
        if k == named_points.blinded_histogram_key():
            kinds["histogram"] += 1
        elif i == named_points.publisher_noise_id():
            kinds["publisher"] += 1
        elif k == named_points.destroyed_key():
            kinds["reach"] += 1
        elif i == named_points.padding_noise_id():
            kinds["padding"] += 1
    assert kinds == {"histogram": 42, "publisher": 7, "reach": 4, "padding": 53}

    ro_payload = ro_setup_phase(RoSetupRequest(common, keys, ()), random).payload
    assert len(ro_payload) == (VECTORS["geometric"]["reach_only_total"] + 1) * 66
    # The trailing ciphertext encrypts 21·P: 21 distinct blinded-histogram ids.
    trailing = elgamal.decrypt_one(ro_payload[-66:], secret)
    assert trailing == named_points.unit_multiples(21)[-1]
