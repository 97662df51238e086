"""Channel set-up (TLS, bearer token, the default service config) and the call helper
that turns grpcio errors into PharosError."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

import grpc

from .errors import PharosError, ResourceExhaustedError, UnavailableError, from_rpc_error

T = TypeVar("T")

Metadata = Sequence[tuple[str, str]]


def default_service_config() -> dict[str, Any]:
    """The bundled service config (a copy of deploy/service_config.json): per-service
    timeouts and retries of UNAVAILABLE / RESOURCE_EXHAUSTED."""
    text = resources.files("pharos_client").joinpath("service_config.json").read_text("utf-8")
    config: dict[str, Any] = json.loads(text)
    return config


@dataclass(frozen=True)
class TLS:
    """TLS settings: a CA bundle to trust (default: the system's roots), a client
    certificate and key for mutual TLS, and the name to expect in the server's
    certificate when it differs from the endpoint's host."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        def read(path: str | None) -> bytes | None:
            if path is None:
                return None
            with open(path, "rb") as handle:
                return handle.read()

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca_file),
            private_key=read(self.key_file),
            certificate_chain=read(self.cert_file),
        )


class _ClientCallDetails(grpc.ClientCallDetails):
    def __init__(self, base: grpc.ClientCallDetails, metadata: Any) -> None:
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = getattr(base, "wait_for_ready", None)
        self.compression = getattr(base, "compression", None)


class _MetadataInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds fixed metadata (the bearer token, the actor) to every call."""

    def __init__(self, extra: list[tuple[str, str]]) -> None:
        self._extra = extra

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata: list[Any] = [*(details.metadata or ()), *self._extra]
        return _ClientCallDetails(details, metadata)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, iterator: Any) -> Any:
        return continuation(self._details(details), iterator)

    def intercept_stream_stream(self, continuation: Any, details: Any, iterator: Any) -> Any:
        return continuation(self._details(details), iterator)


def open_channel(
    endpoint: str,
    *,
    token: str | None,
    tls: bool | TLS,
    actor: str | None,
    service_config: dict[str, Any] | None,
    options: Sequence[tuple[str, Any]],
) -> tuple[grpc.Channel, grpc.Channel]:
    """(the raw channel, the channel with metadata interceptors): close the raw one."""
    opts: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", 8 * 1024 * 1024),
        ("grpc.max_send_message_length", 8 * 1024 * 1024),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.enable_retries", 1),
    ]
    if service_config is not None:
        opts.append(("grpc.service_config", json.dumps(service_config)))
    if isinstance(tls, TLS) and tls.server_name:
        opts.append(("grpc.ssl_target_name_override", tls.server_name))
    opts.extend(options)
    if tls is False:
        raw = grpc.insecure_channel(endpoint, options=opts)
    else:
        settings = tls if isinstance(tls, TLS) else TLS()
        raw = grpc.secure_channel(endpoint, settings.credentials(), options=opts)
    extra: list[tuple[str, str]] = []
    if token:
        extra.append(("authorization", f"Bearer {token}"))
    if actor:
        extra.append(("x-pharos-actor", actor))
    channel = grpc.intercept_channel(raw, _MetadataInterceptor(extra)) if extra else raw
    return raw, channel


def call(method: Callable[..., T], request: Any, *, timeout: float | None = None) -> T:
    """One unary call; a failure is raised as the matching PharosError."""
    try:
        return method(request, timeout=timeout)
    except grpc.RpcError as error:
        raise from_rpc_error(error) from None


def stream(method: Callable[..., Any], request: Any, *, timeout: float | None = None) -> Iterator[Any]:
    """A server-streaming call whose failure is raised as the matching PharosError."""
    responses = method(request, timeout=timeout)
    try:
        yield from responses
    except grpc.RpcError as error:
        raise from_rpc_error(error) from None
    finally:
        responses.cancel()


@dataclass(frozen=True)
class RetryPolicy:
    """How a layer method (BatchWriter, watch, write_*) retries RESOURCE_EXHAUSTED and
    UNAVAILABLE: after the server's RetryInfo delay when it sent one, else after an
    exponential backoff from `initial_backoff` to `max_backoff` (with jitter); at most
    `max_attempts` calls in all (0: no limit) and never past `deadline` seconds."""

    max_attempts: int = 10
    initial_backoff: float = 0.1
    max_backoff: float = 10.0
    deadline: float | None = 120.0

    def backoff(self, attempt: int) -> float:
        base = min(self.max_backoff, self.initial_backoff * (2 ** max(0, attempt - 1)))
        return float(base * random.uniform(0.5, 1.0))


def retry_delay(error: PharosError, policy: RetryPolicy, attempt: int) -> float | None:
    """The delay before retrying after `error` on attempt `attempt` (1-based), or None if
    the error is not to be retried. RESOURCE_EXHAUSTED without a RetryInfo is a limit of
    the request itself (like query.max_samples) and is not retried."""
    if isinstance(error, ResourceExhaustedError) and error.retry_delay is None:
        return None
    if not isinstance(error, (ResourceExhaustedError, UnavailableError)):
        return None
    if policy.max_attempts and attempt >= policy.max_attempts:
        return None
    if error.retry_delay is not None:
        return error.retry_delay
    return policy.backoff(attempt)


def call_with_retry(
    method: Callable[..., T],
    request: Any,
    *,
    policy: RetryPolicy,
    timeout: float | None = None,
    on_retry: Callable[[PharosError, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call`, retried under `policy`, honouring the server's RetryInfo."""
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return call(method, request, timeout=timeout)
        except PharosError as error:
            delay = retry_delay(error, policy, attempt)
            if delay is None:
                raise
            if policy.deadline is not None and time.monotonic() - started + delay > policy.deadline:
                raise
            if on_retry is not None:
                on_retry(error, delay)
            sleep(delay)
