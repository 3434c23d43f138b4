"""`ComputationStage` messages from `(protocol, stage)` numbers, for clients of the internal API."""

from __future__ import annotations

from cmms.api.internal.duchy.v1 import computation_protocols_pb2
from cmms.protocols.stages import ProtocolType


def computation_stage(
    protocol: ProtocolType, stage: int
) -> computation_protocols_pb2.ComputationStage:
    """The oneof member numbered as the protocol (each member is numbered so), set to `stage`."""
    field = computation_protocols_pb2.ComputationStage.DESCRIPTOR.fields_by_number[protocol.value]
    message = computation_protocols_pb2.ComputationStage()
    setattr(message, field.name, stage)
    return message
