"""PENDING_REQUISITION_PARAMS: create the local computation through the protocol's starter."""

from __future__ import annotations

from collections.abc import Mapping

import grpc

from cmms.api.system.v1 import computation_pb2
from cmms.common.grpc import StatusError
from cmms.duchy.herald.local import LocalComputations
from cmms.duchy.herald.names import global_computation_id
from cmms.duchy.herald.starters.common import Starter
from cmms.duchy.herald.starters.registry import starter_for

Computation = computation_pb2.Computation


class ComputationCreator:
    def __init__(self, local: LocalComputations, starters: Mapping[int, Starter]) -> None:
        self._local = local
        self._starters = starters

    async def create(self, computation: Computation) -> bool:
        """Whether this call created it (False: it was already there)."""
        # Checked first so that a replay neither re-validates nor makes another HMSS key pair.
        if await self._local.get_token(global_computation_id(computation.name)) is not None:
            return False
        request = await starter_for(computation, self._starters).creation_request(computation)
        try:
            await self._local.create(request)
        except StatusError as error:
            if error.code == grpc.StatusCode.ALREADY_EXISTS:
                return False
            raise
        return True
