"""Ending and deleting local computations on the Herald's behalf."""

from __future__ import annotations

from cmms.duchy.herald.local import CompletedReason, LocalComputations
from cmms.duchy.herald.stage_moves import is_terminal, terminal_stage


async def finish_locally(
    local: LocalComputations, global_computation_id: str, reason: CompletedReason
) -> bool:
    """Finish the computation with `reason` unless it is unknown here or already ended; whether
    this call finished it."""
    token = await local.get_token(global_computation_id)
    if token is None or is_terminal(token):
        return False
    await local.finish(token, terminal_stage(token), reason)
    return True


async def delete_locally(local: LocalComputations, global_computation_id: str) -> bool:
    """Delete the computation (and its blobs) if this duchy has it; whether it did."""
    token = await local.get_token(global_computation_id)
    if token is None:
        return False
    await local.delete(token.local_computation_id)
    return True
