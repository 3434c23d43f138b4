"""`EventGroups`: Create (the EDP), Get (the EDP or its MC), List (by MC or by EDP)."""

from __future__ import annotations

from typing import Any

from cmms.api.public.v1 import event_groups_pb2, event_groups_pb2_grpc
from cmms.common.identity import PrincipalKind, PrincipalProvider, current_principal
from cmms.kingdom import names
from cmms.kingdom.api.caller import require
from cmms.kingdom.api.views import event_group_message
from cmms.kingdom.db.event_groups import NewEventGroup
from cmms.kingdom.db.repository import KingdomRepositories
from cmms.kingdom.errors import invalid_argument, not_found
from cmms.kingdom.timestamps import from_proto


class EventGroupsServicer(event_groups_pb2_grpc.EventGroupsServicer):
    def __init__(
        self,
        repositories: KingdomRepositories,
        *,
        principal_provider: PrincipalProvider = current_principal,
    ) -> None:
        self._repositories = repositories
        self._principal = principal_provider

    async def CreateEventGroup(
        self, request: event_groups_pb2.CreateEventGroupRequest, context: Any
    ) -> event_groups_pb2.EventGroup:
        dp_id = names.parse_data_provider(request.parent)
        if dp_id is None:
            raise invalid_argument(f"bad parent {request.parent!r}")
        require(self._principal, PrincipalKind.DATA_PROVIDER, dp_id)
        group = request.event_group
        mc_id = names.parse_measurement_consumer(group.measurement_consumer)
        if mc_id is None:
            raise invalid_argument("event_group.measurement_consumer is required")
        interval = group.data_availability_interval
        record = await self._repositories.event_groups.create(
            NewEventGroup(
                data_provider_id=dp_id,
                measurement_consumer_id=mc_id,
                event_group_reference_id=group.event_group_reference_id,
                display_name=group.display_name,
                media_types=tuple(
                    event_groups_pb2.EventGroup.MediaType.Name(m) for m in group.media_types
                ),
                data_availability_start_us=from_proto(interval.start_time)
                if interval.HasField("start_time")
                else None,
                data_availability_end_us=from_proto(interval.end_time)
                if interval.HasField("end_time")
                else None,
                request_id=request.request_id or None,
            )
        )
        return event_group_message(record)

    async def GetEventGroup(
        self, request: event_groups_pb2.GetEventGroupRequest, context: Any
    ) -> event_groups_pb2.EventGroup:
        parsed = names.parse_event_group(request.name)
        if parsed is None:
            raise invalid_argument(f"bad event group name {request.name!r}")
        record = await self._repositories.event_groups.get(parsed[1])
        principal = self._principal()
        visible = (
            principal.kind is PrincipalKind.DATA_PROVIDER
            and principal.id == record.data_provider_id
        ) or (
            principal.kind is PrincipalKind.MEASUREMENT_CONSUMER
            and principal.id == record.measurement_consumer_id
        )
        if not visible or parsed[0] not in (
            record.data_provider_id,
            record.measurement_consumer_id,
        ):
            raise not_found("event group not found")
        return event_group_message(record)

    async def ListEventGroups(
        self, request: event_groups_pb2.ListEventGroupsRequest, context: Any
    ) -> event_groups_pb2.ListEventGroupsResponse:
        owner = names.parse_owner(request.parent)
        filter_ids = []
        for name in request.filter.data_providers:
            dp_id = names.parse_data_provider(name)
            if dp_id is None:
                raise invalid_argument(f"bad data provider name {name!r}")
            filter_ids.append(dp_id)
        if owner is not None and owner.kind is names.OwnerKind.MEASUREMENT_CONSUMER:
            require(self._principal, PrincipalKind.MEASUREMENT_CONSUMER, owner.id)
            records = await self._repositories.event_groups.find(
                measurement_consumer_id=owner.id, data_provider_filter=tuple(filter_ids)
            )
        elif owner is not None and owner.kind is names.OwnerKind.DATA_PROVIDER:
            require(self._principal, PrincipalKind.DATA_PROVIDER, owner.id)
            records = await self._repositories.event_groups.find(data_provider_id=owner.id)
        else:
            raise invalid_argument(f"bad parent {request.parent!r}")
        return event_groups_pb2.ListEventGroupsResponse(
            event_groups=[event_group_message(r) for r in records]
        )
