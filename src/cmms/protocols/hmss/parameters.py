"""HMSS parameters: frequency-vector shape, ring modulus and noise configuration (spec §A.2, §A.3)."""

from __future__ import annotations

from dataclasses import dataclass

from cmms.crypto.ring import is_prime
from cmms.dp.parameters import PrivacyParams
from cmms.protocols.errors import InvalidProtocolInputError
from cmms.protocols.measurement import MeasurementType, NoiseMechanism, float32_width

__all__ = [
    "HMSS_MECHANISMS",
    "FrequencyVectorParams",
    "MeasurementType",
    "NoiseConfig",
    "NoiseMechanism",
    "float32_width",
    "is_prime",
    "maximum_combined_frequency",
]

MAX_RING_MODULUS = 2**31 - 1  # the Kingdom config field is an int32


HMSS_MECHANISMS = frozenset(
    {NoiseMechanism.GEOMETRIC, NoiseMechanism.DISCRETE_GAUSSIAN, NoiseMechanism.NONE}
)


@dataclass(frozen=True)
class FrequencyVectorParams:
    """`register_count` N, `maximum_combined_frequency` and ring modulus q.

    Requires `N >= 1`, `2 <= q <= 2**31 - 1` and `q > maximum_combined_frequency + 1`, so the
    sentinel `q - 1` never equals a real combined frequency.
    """

    register_count: int
    maximum_combined_frequency: int
    ring_modulus: int

    def __post_init__(self) -> None:
        if self.register_count < 1:
            raise InvalidProtocolInputError(
                f"register count must be at least 1, got {self.register_count}"
            )
        if not 2 <= self.ring_modulus <= MAX_RING_MODULUS:
            raise InvalidProtocolInputError(
                f"ring modulus must be at least 2 and fit an int32, got {self.ring_modulus}"
            )
        if self.maximum_combined_frequency < 1:
            raise InvalidProtocolInputError(
                f"maximum combined frequency must be at least 1, got {self.maximum_combined_frequency}"
            )
        if self.ring_modulus <= self.maximum_combined_frequency + 1:
            raise InvalidProtocolInputError(
                f"ring modulus {self.ring_modulus} must exceed the maximum combined frequency "
                f"{self.maximum_combined_frequency} plus one"
            )

    @property
    def sentinel(self) -> int:
        """The value of unused noise slots, `q - 1`."""
        return self.ring_modulus - 1


def maximum_combined_frequency(maximum_frequency: int, requisition_count: int) -> int:
    """`MF * #requisitions`, what the reference mill passes (spec pitfall 1), not `1 + MF·E`."""
    if maximum_frequency < 1 or requisition_count < 1:
        raise InvalidProtocolInputError(
            f"need maximum frequency and requisition count >= 1, got {maximum_frequency}, "
            f"{requisition_count}"
        )
    return maximum_frequency * requisition_count


@dataclass(frozen=True)
class NoiseConfig:
    """The DP mechanism and budgets; NONE carries no budgets, the others at least a reach budget."""

    mechanism: NoiseMechanism = NoiseMechanism.NONE
    reach: PrivacyParams | None = None
    frequency: PrivacyParams | None = None

    def __post_init__(self) -> None:
        if self.mechanism not in HMSS_MECHANISMS:
            raise InvalidProtocolInputError(
                f"HMSS supports GEOMETRIC, DISCRETE_GAUSSIAN and NONE noise, got {self.mechanism.name}"
            )
        if self.mechanism is NoiseMechanism.NONE:
            if self.reach is not None or self.frequency is not None:
                raise InvalidProtocolInputError("noise mechanism NONE takes no DP params")
        elif self.reach is None:
            raise InvalidProtocolInputError(
                f"noise mechanism {self.mechanism.name} needs reach DP params"
            )

    @property
    def enabled(self) -> bool:
        return self.mechanism is not NoiseMechanism.NONE

    def require_frequency(self) -> PrivacyParams | None:
        """The frequency budget for R&F; an error if noise is on and it is missing."""
        if self.enabled and self.frequency is None:
            raise InvalidProtocolInputError(
                f"noise mechanism {self.mechanism.name} needs frequency DP params for R&F"
            )
        return self.frequency
