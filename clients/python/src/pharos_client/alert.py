"""The alert service: alerts, acknowledgements, silences and stored rule groups."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Union

import grpc

from ._channel import call, stream
from ._proto.pharos.alert.v1 import alert_pb2 as pb
from ._proto.pharos.alert.v1 import alert_pb2_grpc as pb_grpc

__all__ = ["Acknowledgement", "Alert", "AlertClient", "Matcher", "Silence"]

When = Union[datetime, float, int]


def _time(ms: int) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc) if ms else None


def _ms(when: When) -> int:
    if isinstance(when, datetime):
        return int(when.timestamp() * 1000)
    return int(float(when) * 1000)


@dataclass(frozen=True)
class Acknowledgement:
    by: str
    comment: str
    at: datetime | None


@dataclass(frozen=True)
class Alert:
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: str  # "active", "suppressed" or "resolved"
    starts_at: datetime | None
    ends_at: datetime | None
    updated_at: datetime | None
    generator_url: str
    receivers: list[str]
    silenced_by: list[str]
    inhibited_by: list[str]
    acknowledgement: Acknowledgement | None

    @classmethod
    def from_pb(cls, a: pb.Alert) -> Alert:
        ack = None
        if a.HasField("acknowledgement"):
            ack = Acknowledgement(
                a.acknowledgement.by, a.acknowledgement.comment, _time(a.acknowledgement.at_ms)
            )
        return cls(
            fingerprint=a.fingerprint,
            labels=dict(a.labels),
            annotations=dict(a.annotations),
            state=pb.AlertState.Name(a.state).removeprefix("ALERT_STATE_").lower(),
            starts_at=_time(a.starts_at_ms),
            ends_at=_time(a.ends_at_ms),
            updated_at=_time(a.updated_at_ms),
            generator_url=a.generator_url,
            receivers=list(a.receivers),
            silenced_by=list(a.silenced_by),
            inhibited_by=list(a.inhibited_by),
            acknowledgement=ack,
        )


_OPS = {"=": pb.MATCH_TYPE_EQUAL, "!=": pb.MATCH_TYPE_NOT_EQUAL,
        "=~": pb.MATCH_TYPE_REGEX, "!~": pb.MATCH_TYPE_NOT_REGEX}
_OP_TEXT = {v: k for k, v in _OPS.items()}
_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(\S*))\s*$')


@dataclass(frozen=True)
class Matcher:
    """One condition of a silence: `name` `op` `value`, op one of = != =~ !~."""

    name: str
    value: str
    op: str = "="

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """`name="value"`, `name=~"regex"`, `name!=value`..."""
        match = _MATCHER.match(text)
        if not match:
            raise ValueError(f"not a matcher: {text!r} (like severity=\"page\")")
        quoted, bare = match.group(3), match.group(4)
        value = bytes(quoted, "utf-8").decode("unicode_escape") if quoted is not None else bare
        return cls(match.group(1), value or "", match.group(2))

    def to_pb(self) -> pb.Matcher:
        return pb.Matcher(name=self.name, value=self.value, type=_OPS[self.op])

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: list[Matcher]
    state: str  # "pending", "active" or "expired"
    starts_at: datetime | None
    ends_at: datetime | None
    updated_at: datetime | None
    created_by: str
    comment: str

    @classmethod
    def from_pb(cls, s: pb.Silence) -> Silence:
        return cls(
            id=s.id,
            matchers=[Matcher(m.name, m.value, _OP_TEXT.get(m.type, "=")) for m in s.matchers],
            state=pb.SilenceState.Name(s.state).removeprefix("SILENCE_STATE_").lower(),
            starts_at=_time(s.starts_at_ms),
            ends_at=_time(s.ends_at_ms),
            updated_at=_time(s.updated_at_ms),
            created_by=s.created_by,
            comment=s.comment,
        )


def _matchers(items: Iterable[Matcher | str]) -> list[pb.Matcher]:
    return [(m if isinstance(m, Matcher) else Matcher.parse(m)).to_pb() for m in items]


class AlertClient:
    """The AlertService: `client.alert`. Matchers in lists are Alertmanager's text
    syntax (severity="page", instance=~"db-.*")."""

    def __init__(self, channel: grpc.Channel, *, timeout: float | None = None) -> None:
        self._stub: Any = pb_grpc.AlertServiceStub(channel)
        self._timeout = timeout

    @property
    def stub(self) -> Any:
        return self._stub

    def list_alerts(
        self,
        matchers: Sequence[str] = (),
        *,
        silenced: bool = True,
        inhibited: bool = True,
        active: bool = True,
        receiver: str = "",
    ) -> list[Alert]:
        """The firing alerts (by fingerprint) that match every matcher."""
        request = pb.ListAlertsRequest(
            matchers=list(matchers),
            exclude_silenced=not silenced,
            exclude_inhibited=not inhibited,
            exclude_active=not active,
            receiver=receiver,
        )
        response = call(self._stub.ListAlerts, request, timeout=self._timeout)
        return [Alert.from_pb(a) for a in response.alerts]

    def get_alert(self, fingerprint: str) -> Alert:
        response = call(
            self._stub.GetAlert, pb.GetAlertRequest(fingerprint=fingerprint), timeout=self._timeout
        )
        return Alert.from_pb(response.alert)

    def acknowledge(self, fingerprint: str, comment: str = "") -> Alert:
        """Records that the caller is on a firing alert (the caller is the token's name,
        else the client's `actor`)."""
        request = pb.AcknowledgeRequest(fingerprint=fingerprint, comment=comment)
        return Alert.from_pb(call(self._stub.Acknowledge, request, timeout=self._timeout).alert)

    def watch_alerts(self, matchers: Sequence[str] = ()) -> Iterator[tuple[str, Alert]]:
        """(event kind, alert) pairs: "current" for each firing alert first, then
        "firing", "updated", "resolved", "acknowledged" as they happen."""
        request = pb.WatchAlertsRequest(matchers=list(matchers))
        for response in stream(self._stub.WatchAlerts, request):
            for event in response.events:
                kind = pb.AlertEventKind.Name(event.kind).removeprefix("ALERT_EVENT_KIND_").lower()
                yield kind, Alert.from_pb(event.alert)

    def list_silences(self, matchers: Sequence[str] = (), *, expired: bool = True) -> list[Silence]:
        request = pb.ListSilencesRequest(matchers=list(matchers), exclude_expired=not expired)
        response = call(self._stub.ListSilences, request, timeout=self._timeout)
        return [Silence.from_pb(s) for s in response.silences]

    def create_silence(
        self,
        matchers: Iterable[Matcher | str],
        *,
        duration: timedelta | float | None = None,
        ends_at: When | None = None,
        starts_at: When | None = None,
        comment: str = "",
        created_by: str = "",
        id: str = "",
    ) -> Silence:
        """Creates a silence (or updates silence `id`) lasting `duration` (a timedelta or
        seconds) from `starts_at` (default now), or until `ends_at`."""
        start_ms = _ms(starts_at) if starts_at is not None else 0
        if ends_at is not None:
            end_ms = _ms(ends_at)
        elif duration is not None:
            seconds = duration.total_seconds() if isinstance(duration, timedelta) else duration
            end_ms = (start_ms or int(time.time() * 1000)) + int(seconds * 1000)
        else:
            raise ValueError("give duration or ends_at")
        request = pb.CreateSilenceRequest(
            id=id,
            matchers=_matchers(matchers),
            starts_at_ms=start_ms,
            ends_at_ms=end_ms,
            created_by=created_by,
            comment=comment,
        )
        return Silence.from_pb(call(self._stub.CreateSilence, request, timeout=self._timeout).silence)

    def expire_silence(self, silence_id: str) -> Silence:
        request = pb.ExpireSilenceRequest(id=silence_id)
        return Silence.from_pb(call(self._stub.ExpireSilence, request, timeout=self._timeout).silence)

    def put_rule_group(self, namespace: str, yaml: str) -> str:
        """Stores a rule group (a Prometheus rule file with one group); returns its name."""
        request = pb.PutRuleGroupRequest(namespace=namespace, yaml=yaml)
        return str(call(self._stub.PutRuleGroup, request, timeout=self._timeout).name)

    def delete_rule_group(self, namespace: str, name: str) -> None:
        request = pb.DeleteRuleGroupRequest(namespace=namespace, name=name)
        call(self._stub.DeleteRuleGroup, request, timeout=self._timeout)

    def list_rule_groups(self) -> list[dict[str, Any]]:
        response = call(self._stub.ListRuleGroups, pb.ListRuleGroupsRequest(), timeout=self._timeout)
        return [
            {
                "file": g.file,
                "name": g.name,
                "namespace": g.namespace,
                "interval": g.interval_ms / 1000.0,
                "last_evaluation": _time(g.last_evaluation_ms),
                "evaluations": int(g.evaluations),
                "errors": {e.rule: e.error for e in g.errors},
                "running": g.running,
            }
            for g in response.groups
        ]
