"""The Kingdom config and the duchies' protocols setup config of a local system.

Based on the reference test deployment (`cmms kingdom example-config`), changed so that:

- every LLv2 and reach-only LLv2 computation runs round all three duchies;
- HMSS and TrusTee are enabled only for their own measurement consumers (see `routing`), so the
  consumer decides the protocol;
- with noise off, HMSS and TrusTee add none (LLv2's noise is part of its protocol and stays).
"""

from __future__ import annotations

import json
from typing import Any

from cmms.deploy.local.routing import HMSS_CONSUMER, TRUSTEE_CONSUMER
from cmms.duchy.herald.config import (
    HmssSetup,
    LiquidLegionsSetup,
    ProtocolsSetupConfig,
    TrusTeeSetup,
)
from cmms.kingdom.config import KingdomConfig, NoiseMechanism, example_config

AGGREGATOR = "aggregator"
WORKERS = ("worker1", "worker2")
# The Kingdom's duchy order matters (participants, HMSS placement); the aggregator comes first.
DUCHIES = (AGGREGATOR, *WORKERS)


def kingdom_config(*, noise: bool) -> KingdomConfig:
    document: dict[str, Any] = example_config(DUCHIES).model_dump(mode="json")
    for name in ("llv2", "reach_only_llv2"):
        document[name]["minimum_duchy_count"] = len(DUCHIES)
    document["hmss"].update(
        enabled=False,
        enabled_for_measurement_consumers=[HMSS_CONSUMER],
        first_non_aggregator=WORKERS[0],
        second_non_aggregator=WORKERS[1],
        aggregator=AGGREGATOR,
    )
    document["trustee"].update(
        enabled=False, enabled_for_measurement_consumers=[TRUSTEE_CONSUMER], duchy=AGGREGATOR
    )
    if not noise:
        document["hmss"]["noise_mechanism"] = NoiseMechanism.NONE.value
        document["trustee"]["noise_mechanism"] = NoiseMechanism.NONE.value
    return KingdomConfig.model_validate(document)


def kingdom_config_json(config: KingdomConfig) -> str:
    return json.dumps(config.model_dump(mode="json"), indent=2) + "\n"


def protocols_setup_config() -> ProtocolsSetupConfig:
    """The same roles as the Kingdom's config, as every duchy's herald reads them."""
    return ProtocolsSetupConfig(
        llv2=LiquidLegionsSetup(aggregator=AGGREGATOR),
        reach_only_llv2=LiquidLegionsSetup(aggregator=AGGREGATOR),
        hmss=HmssSetup(
            first_non_aggregator=WORKERS[0],
            second_non_aggregator=WORKERS[1],
            aggregator=AGGREGATOR,
        ),
        trustee=TrusTeeSetup(duchy=AGGREGATOR),
    )
