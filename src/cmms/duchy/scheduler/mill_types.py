"""The kinds of mill job the scheduler launches, and how their jobs are named.

LLv2 and reach-only LLv2 run in the same mill image and share one concurrency limit; HMSS and
TrusTee each have their own. The `label` is the `mill-type` label put on every job of the type.
"""

from __future__ import annotations

import random
from enum import Enum

from cmms.protocols.stages import ProtocolType

# Lower-case consonants and digits that cannot spell words or be confused with one another.
JOB_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
JOB_SUFFIX_LENGTH = 5
# Kubernetes copies the job name into a label value, which is limited to 63 characters.
MAX_JOB_NAME_LENGTH = 63


class MillType(Enum):
    LLV2 = "llv2"
    HMSS = "hmss"
    TRUSTEE = "trustee"

    @property
    def label(self) -> str:
        """Value of the `mill-type` label of this type's jobs."""
        return _LABELS[self]

    @property
    def protocols(self) -> tuple[ProtocolType, ...]:
        """Protocols whose work this mill type claims, in claiming order."""
        return _PROTOCOLS[self]


_LABELS = {
    MillType.LLV2: "LIQUID_LEGIONS_V2",
    MillType.HMSS: "HONEST_MAJORITY_SHARE_SHUFFLE",
    MillType.TRUSTEE: "TRUS_TEE",
}
_PROTOCOLS = {
    MillType.LLV2: (
        ProtocolType.LIQUID_LEGIONS_V2,
        ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2,
    ),
    MillType.HMSS: (ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE,),
    MillType.TRUSTEE: (ProtocolType.TRUS_TEE,),
}


def job_name(duchy_name: str, mill_type: MillType, rng: random.Random) -> str:
    """`{duchy}-{type}-mill-job-{5 random characters}`; also the work lock's owner."""
    suffix = "".join(rng.choice(JOB_SUFFIX_ALPHABET) for _ in range(JOB_SUFFIX_LENGTH))
    name = f"{duchy_name}-{mill_type.value}-mill-job-{suffix}"
    if len(name) > MAX_JOB_NAME_LENGTH:
        raise ValueError(f"job name {name!r} is longer than {MAX_JOB_NAME_LENGTH} characters")
    return name
