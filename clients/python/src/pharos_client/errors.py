"""The exceptions of pharos-client: one class per kind of gRPC failure, each carrying
the status code, message and the rich details Pharos sends (google.rpc.BadRequest
field violations, RetryInfo, ErrorInfo)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"

__all__ = [
    "AlreadyExistsError",
    "CancelledError",
    "ConflictError",
    "DeadlineExceededError",
    "ErrorInfo",
    "FieldViolation",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "PharosError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
    "from_rpc_error",
]


@dataclass(frozen=True)
class FieldViolation:
    """One request field the server refused, and why."""

    field: str
    description: str


@dataclass(frozen=True)
class ErrorInfo:
    """google.rpc.ErrorInfo: a stable machine-readable reason (like REVISION_MISMATCH)."""

    reason: str
    domain: str
    metadata: dict[str, str] = field(default_factory=dict)


class PharosError(Exception):
    """A failed call. `code` is the gRPC status code; `retry_delay` (seconds) is set when
    the server said when to retry (google.rpc.RetryInfo)."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        field_violations: tuple[FieldViolation, ...] = (),
        retry_delay: float | None = None,
        error_info: ErrorInfo | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.field_violations = field_violations
        self.retry_delay = retry_delay
        self.error_info = error_info

    @property
    def reason(self) -> str | None:
        """The ErrorInfo reason, when the server sent one."""
        return self.error_info.reason if self.error_info else None

    @property
    def retryable(self) -> bool:
        """Whether the server asked to retry (it sent a RetryInfo)."""
        return self.retry_delay is not None


class InvalidArgumentError(PharosError, ValueError):
    """INVALID_ARGUMENT; `field_violations` names the offending fields."""


class NotFoundError(PharosError, LookupError):
    """NOT_FOUND."""


class AlreadyExistsError(PharosError):
    """ALREADY_EXISTS."""


class ConflictError(PharosError):
    """FAILED_PRECONDITION or ABORTED, like a compare-and-set whose revision no longer
    matches (reason REVISION_MISMATCH; `current_revision` is then set)."""

    @property
    def current_revision(self) -> int | None:
        if self.error_info and "current_revision" in self.error_info.metadata:
            return int(self.error_info.metadata["current_revision"])
        return None


class OutOfRangeError(PharosError):
    """OUT_OF_RANGE, like a watch resuming from a compacted revision (REVISION_COMPACTED)."""


class UnauthenticatedError(PharosError):
    """UNAUTHENTICATED: a missing or unknown bearer token."""


class PermissionDeniedError(PharosError):
    """PERMISSION_DENIED."""


class ResourceExhaustedError(PharosError):
    """RESOURCE_EXHAUSTED: overload (with `retry_delay`) or a limit of the request itself
    (without: retrying will not help)."""


class UnavailableError(PharosError):
    """UNAVAILABLE: the server or its database cannot be reached now."""


class DeadlineExceededError(PharosError, TimeoutError):
    """DEADLINE_EXCEEDED."""


class CancelledError(PharosError):
    """CANCELLED."""


class InternalError(PharosError):
    """Any other status (INTERNAL, UNKNOWN, UNIMPLEMENTED, DATA_LOSS...)."""


_BY_CODE: dict[grpc.StatusCode, type[PharosError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: ConflictError,
    grpc.StatusCode.ABORTED: ConflictError,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRangeError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.CANCELLED: CancelledError,
}


def _rich_status(error: Any) -> status_pb2.Status | None:
    trailing = getattr(error, "trailing_metadata", None)
    if trailing is None:
        return None
    try:
        metadata = trailing() or ()
    except Exception:  # noqa: BLE001 - a call that never started has none
        return None
    for key, value in metadata:
        if key == _DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except Exception:  # noqa: BLE001 - malformed details are ignored
                return None
    return None


def from_rpc_error(error: grpc.RpcError) -> PharosError:
    """Maps a grpcio error (a failed call) to the matching PharosError."""
    code_fn = getattr(error, "code", None)
    details_fn = getattr(error, "details", None)
    code: grpc.StatusCode = code_fn() if callable(code_fn) else grpc.StatusCode.UNKNOWN
    message: str = (details_fn() if callable(details_fn) else None) or str(error)
    violations: list[FieldViolation] = []
    retry_delay: float | None = None
    info: ErrorInfo | None = None
    rich = _rich_status(error)
    if rich is not None:
        for detail in rich.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                violations.extend(
                    FieldViolation(v.field, v.description) for v in bad_request.field_violations
                )
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                retry_delay = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
            elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                raw = error_details_pb2.ErrorInfo()
                detail.Unpack(raw)
                info = ErrorInfo(raw.reason, raw.domain, dict(raw.metadata))
    cls = _BY_CODE.get(code, InternalError)
    result = cls(
        code,
        message,
        field_violations=tuple(violations),
        retry_delay=retry_delay,
        error_info=info,
    )
    result.__cause__ = error
    return result
