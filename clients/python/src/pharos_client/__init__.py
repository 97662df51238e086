"""pharos-client: a typed Python client for Pharos (config, ingest, query, search, alert)."""

from ._channel import TLS, RetryPolicy, default_service_config
from ._values import ValueType
from .alert import Alert, AlertClient, Matcher, Silence
from .client import Client
from .config import ChangeKind, ConfigClient, ConfigEntry, ConfigWatch, HistoryItem, WatchEvent
from .errors import (
    AlreadyExistsError,
    CancelledError,
    ConflictError,
    DeadlineExceededError,
    ErrorInfo,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    PharosError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)
from .ingest import BatchWriter, IngestClient, Rejection, WriteResult, point
from .query import InstantSample, QueryClient, QueryResult, RangeSeries
from .search import IndexInfo, SearchClient, SearchResult

__version__ = "0.1.0"

__all__ = [
    "TLS",
    "Alert",
    "AlertClient",
    "AlreadyExistsError",
    "BatchWriter",
    "CancelledError",
    "ChangeKind",
    "Client",
    "ConfigClient",
    "ConfigEntry",
    "ConfigWatch",
    "ConflictError",
    "DeadlineExceededError",
    "ErrorInfo",
    "FieldViolation",
    "HistoryItem",
    "IndexInfo",
    "IngestClient",
    "InstantSample",
    "InternalError",
    "InvalidArgumentError",
    "Matcher",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "PharosError",
    "QueryClient",
    "QueryResult",
    "RangeSeries",
    "Rejection",
    "ResourceExhaustedError",
    "RetryPolicy",
    "SearchClient",
    "SearchResult",
    "Silence",
    "UnauthenticatedError",
    "UnavailableError",
    "ValueType",
    "WatchEvent",
    "WriteResult",
    "default_service_config",
    "point",
]
