"""When a stage that failed transiently may be claimed again (duchy_internals §8.3)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

MAX_BASE_DELAY_SECONDS = 600


@dataclass
class EnqueueBackoff:
    """`b + uniform{0..b}` whole seconds, `b = min(600, 2**attempt)`: spreads retries out."""

    rng: random.Random = field(default_factory=random.Random)

    def delay_seconds(self, attempt: int) -> int:
        base: int = min(MAX_BASE_DELAY_SECONDS, 1 << max(attempt, 0))
        return base + int(self.rng.randint(0, base))
