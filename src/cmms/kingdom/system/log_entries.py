"""`ComputationLogEntries.CreateComputationLogEntry` (§2.4): store only, no state change."""

from __future__ import annotations

from typing import Any

from cmms.api.system.v1 import computation_log_entries_pb2 as log_pb2
from cmms.api.system.v1 import computation_log_entries_pb2_grpc as log_pb2_grpc
from cmms.common.identity import PrincipalProvider, current_principal
from cmms.kingdom import names
from cmms.kingdom.db.log_entries import NewLogEntry
from cmms.kingdom.db.repository import KingdomRepositories
from cmms.kingdom.errors import invalid_argument, permission_denied
from cmms.kingdom.system.caller import calling_duchy
from cmms.kingdom.timestamps import from_proto

_TRANSIENT = log_pb2.ComputationLogEntry.ErrorDetails.TRANSIENT


class ComputationLogEntriesServicer(log_pb2_grpc.ComputationLogEntriesServicer):
    def __init__(
        self,
        repositories: KingdomRepositories,
        *,
        principal_provider: PrincipalProvider = current_principal,
    ) -> None:
        self._repositories = repositories
        self._principal = principal_provider

    async def CreateComputationLogEntry(
        self, request: log_pb2.CreateComputationLogEntryRequest, context: Any
    ) -> log_pb2.ComputationLogEntry:
        duchy_id = calling_duchy(self._principal)
        parsed = names.parse_participant(request.parent)
        if parsed is None:
            raise invalid_argument(f"bad participant name {request.parent!r}")
        computation_id, owner = parsed
        if owner != duchy_id:
            raise permission_denied(f"{request.parent} is not duchy {duchy_id}'s participant")
        if not request.HasField("computation_log_entry"):
            raise invalid_argument("computation_log_entry is required")
        entry = request.computation_log_entry
        error_type = None
        error_time_us = None
        if entry.HasField("error_details"):
            if entry.error_details.type != _TRANSIENT:
                raise invalid_argument(
                    "only TRANSIENT errors may be logged; use FailComputationParticipant"
                )
            error_type = "TRANSIENT"
            if entry.error_details.HasField("error_time"):
                error_time_us = from_proto(entry.error_details.error_time)
        entry_id = await self._repositories.log_entries.create(
            computation_id,
            duchy_id,
            NewLogEntry(
                message=entry.log_message,
                child_reference_id=entry.participant_child_reference_id,
                stage_attempt=entry.stage_attempt.SerializeToString()
                if entry.HasField("stage_attempt")
                else None,
                error_type=error_type,
                error_time_us=error_time_us,
            ),
        )
        created = log_pb2.ComputationLogEntry()
        created.CopyFrom(entry)
        created.name = names.log_entry_name(computation_id, duchy_id, entry_id)
        return created
