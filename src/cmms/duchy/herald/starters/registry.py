"""Which starter handles a Kingdom computation: the one of its MPC protocol."""

from __future__ import annotations

from collections.abc import Mapping

from cmms.duchy.herald.starters.common import Computation, Starter, StarterError

# The Kingdom's `mpc_protocol_config` oneof member of each protocol.
PROTOCOL_CONFIG_FIELDS = {
    "liquid_legions_v2": 1,
    "reach_only_liquid_legions_v2": 2,
    "honest_majority_share_shuffle": 3,
    "trus_tee": 4,
}


def protocol_of(computation: Computation) -> int:
    """The `ComputationType` number of the computation's MPC protocol."""
    field = computation.mpc_protocol_config.WhichOneof("protocol")
    if field is None:
        raise StarterError("the computation names no MPC protocol")
    return PROTOCOL_CONFIG_FIELDS[field]


def starter_for(computation: Computation, starters: Mapping[int, Starter]) -> Starter:
    protocol = protocol_of(computation)
    found = starters.get(protocol)
    if found is None:
        raise StarterError(f"this duchy does not run protocol {protocol}")
    return found
