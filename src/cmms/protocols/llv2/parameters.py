"""Parameters and result of a reach-and-frequency LLv2 computation."""

from __future__ import annotations

from dataclasses import dataclass, field

from cmms.protocols.liquid_legions.errors import InvalidStageInputError
from cmms.protocols.liquid_legions.parameters import LiquidLegionsParameters


@dataclass(frozen=True, kw_only=True)
class ReachAndFrequencyParameters(LiquidLegionsParameters):
    """LLv2 parameters plus the maximum frequency F (1 for a reach measurement)."""

    max_frequency: int

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_frequency < 1:
            raise InvalidStageInputError(
                f"maximum frequency must be at least 1, got {self.max_frequency}"
            )

    @property
    def has_frequency_noise(self) -> bool:
        """Whether frequency-noise tuples are added (F > 1 and a frequency budget)."""
        return self.max_frequency > 1 and self.frequency_noiser is not None


@dataclass(frozen=True)
class ReachAndFrequencyResult:
    """Reach and the relative frequency distribution `{f: share}` (key F means "F or more")."""

    reach: int
    frequency: dict[int, float] = field(default_factory=dict)
