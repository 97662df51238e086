"""`Client`: one channel to a Pharos process (or a load balancer in front of several),
with a client per service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from ._channel import TLS, default_service_config, open_channel
from .alert import AlertClient
from .config import ConfigClient
from .ingest import IngestClient
from .query import QueryClient
from .search import SearchClient

__all__ = ["Client"]


class Client:
    """A connection to Pharos.

        with Client("127.0.0.1:50051", token="s3cret") as client:
            client.config.set("app.feature.enabled", True)

    `token` is sent as `authorization: Bearer <token>`; `tls` is False (plaintext),
    True (the system's CA roots) or a TLS(...) with a CA, a client certificate and key,
    or a server name. `service_config` replaces the bundled default service config
    (timeouts and retries per service; a copy of deploy/service_config.json); pass
    `{}` for none. `actor` is sent as x-pharos-actor (who acknowledges, when the token
    has no name). `options` are extra grpcio channel options.
    """

    def __init__(
        self,
        endpoint: str = "127.0.0.1:50051",
        token: str | None = None,
        tls: bool | TLS = False,
        *,
        actor: str | None = None,
        service_config: dict[str, Any] | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        config = default_service_config() if service_config is None else service_config
        self.endpoint = endpoint
        self._raw, self.channel = open_channel(
            endpoint,
            token=token,
            tls=tls,
            actor=actor,
            service_config=config or None,
            options=options,
        )
        self.config = ConfigClient(self.channel)
        self.ingest = IngestClient(self.channel)
        self.query = QueryClient(self.channel)
        self.search = SearchClient(self.channel)
        self.alert = AlertClient(self.channel)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Blocks until the channel is connected (grpc.FutureTimeoutError after `timeout`)."""
        grpc.channel_ready_future(self._raw).result(timeout=timeout)

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
