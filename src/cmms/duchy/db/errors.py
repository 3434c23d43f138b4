"""Errors of the duchy repositories, one class per outcome a gRPC layer maps to a status.

`status` names the gRPC status code to answer with and `reason` the ErrorInfo reason (the
`wfa.measurement.internal.duchy.ErrorCode` name) where one exists. Nothing here imports grpc.
"""

from __future__ import annotations

from typing import ClassVar


class RepositoryError(Exception):
    status: ClassVar[str] = "UNKNOWN"
    reason: ClassVar[str | None] = None


class NotFoundError(RepositoryError):
    status = "NOT_FOUND"


class ComputationNotFoundError(NotFoundError):
    reason = "COMPUTATION_NOT_FOUND"


class RequisitionNotFoundError(NotFoundError):
    """No requisition with that external key (in that computation, where one is named)."""


class StageAttemptNotFoundError(NotFoundError):
    """A stat named a stage attempt that was never started."""


class AlreadyExistsError(RepositoryError):
    status = "ALREADY_EXISTS"


class ComputationAlreadyExistsError(AlreadyExistsError):
    reason = "COMPUTATION_ALREADY_EXISTS"


class RequisitionAlreadyExistsError(AlreadyExistsError):
    """A requisition key of a new computation is already used by another computation."""


class ComputationStatAlreadyExistsError(AlreadyExistsError):
    pass


class StaleVersionError(RepositoryError):
    """The caller's token is older than the stored computation: re-read and retry."""

    status = "ABORTED"
    reason = "COMPUTATION_TOKEN_VERSION_MISMATCH"

    def __init__(self, computation_id: int, version: int, token_version: int) -> None:
        super().__init__(
            f"computation {computation_id} is at version {version}, the token has {token_version}"
        )
        self.computation_id = computation_id
        self.version = version
        self.token_version = token_version


class LockOwnerMismatchError(RepositoryError):
    status = "ABORTED"
    reason = "COMPUTATION_LOCK_OWNER_MISMATCH"


class InvalidArgumentError(RepositoryError):
    status = "INVALID_ARGUMENT"


class InitialStageInvalidError(InvalidArgumentError):
    reason = "COMPUTATION_INITIAL_STAGE_INVALID"


class FailedPreconditionError(RepositoryError):
    status = "FAILED_PRECONDITION"


class IllegalStageTransitionError(FailedPreconditionError):
    """The protocol does not allow the requested stage change from the token's stage."""


class OutputsNotWrittenError(FailedPreconditionError):
    """An OUTPUT blob of the current stage has no path yet."""


class NotAnOutputSlotError(FailedPreconditionError):
    """The blob id is not an OUTPUT slot of the current stage."""


class TerminalStageError(FailedPreconditionError):
    """The computation has ended; it cannot be queued or advanced."""


class DatabaseUnavailableError(RepositoryError):
    """The database did not answer (in time): callers retry UNAVAILABLE."""

    status = "UNAVAILABLE"


class ContinuationTokenInvalidError(FailedPreconditionError):
    """The new continuation token is older than the stored one."""

    reason = "CONTINUATION_TOKEN_INVALID"
