"""How a local system routes each protocol: one measurement consumer per protocol family.

The Kingdom picks the protocol itself (TrusTee > HMSS > reach-only LLv2 > LLv2, spec §1.11). The
local Kingdom config enables HMSS and TrusTee only for their own consumers (the config's
per-consumer allow-lists), so the consumer a measurement is made for decides its protocol:

- `mc1`: LLv2 for reach and frequency, reach-only LLv2 for reach;
- `mc-hmss`: HMSS;
- `mc-trustee`: TrusTee.

Every EDP advertises HMSS and TrusTee, so nothing else stands in the way.
"""

from __future__ import annotations

import enum

LIQUID_LEGIONS_CONSUMER = "mc1"
HMSS_CONSUMER = "mc-hmss"
TRUSTEE_CONSUMER = "mc-trustee"
MEASUREMENT_CONSUMERS = (LIQUID_LEGIONS_CONSUMER, HMSS_CONSUMER, TRUSTEE_CONSUMER)


class LocalProtocol(enum.Enum):
    """A protocol as `cmms mc measure --protocol` and `cmms demo --protocols` name it."""

    LLV2 = "llv2"
    RO_LLV2 = "ro-llv2"
    HMSS = "hmss"
    TRUSTEE = "trustee"

    @property
    def measurement_consumer(self) -> str:
        """The consumer whose measurements the Kingdom runs with this protocol."""
        if self is LocalProtocol.HMSS:
            return HMSS_CONSUMER
        if self is LocalProtocol.TRUSTEE:
            return TRUSTEE_CONSUMER
        return LIQUID_LEGIONS_CONSUMER

    @property
    def measurement_type(self) -> str:
        """The type that gets this protocol (reach-only LLv2 is chosen for reach alone)."""
        return "reach" if self is LocalProtocol.RO_LLV2 else "reach-and-frequency"


def measure_hint(endpoints_file: str, protocol: LocalProtocol) -> str:
    """The `cmms mc measure` command line that runs a measurement with `protocol`."""
    return (
        f"cmms mc measure --endpoints {endpoints_file} --protocol {protocol.value} "
        f"--type {protocol.measurement_type} --measurement-consumer {protocol.measurement_consumer}"
    )
