"""The alert service (pharos.alert.v1.AlertService) from a Python grpcio client: a rule group
stored with PutRuleGroup (`vector(1) > 0`, evaluated every second) fires an alert that
ListAlerts and GetAlert show; WatchAlerts sends it as a CURRENT event, then an ACKNOWLEDGED one
after Acknowledge (the acknowledger is the caller's x-pharos-actor); CreateSilence, ListSilences
and ExpireSilence; ListRuleGroups shows the stored group running; and bad input (a fingerprint,
rule YAML, a matcher, a limit) gets INVALID_ARGUMENT with a google.rpc.BadRequest naming the
field. The server's routing sends nothing (no routing file), so no delivery is recorded.

The stubs come from the session's `pb` fixture, which generates every proto under
proto/pharos."""

from __future__ import annotations

import time
from types import SimpleNamespace

import grpc
import pytest
from test_config import EVENT_TIMEOUT_S, WatchReader, field_violations

RPC_TIMEOUT_S = 10
# How long a rule group may take to fire its alert (it evaluates as it starts, then every 1 s).
FIRING_TIMEOUT_S = 20
NAMESPACE = "pytest-alert"
GROUP = "py-alert-always"
ALERTNAME = "PyAlertAlways"
RULES = f"""groups:
- name: {GROUP}
  interval: 1s
  rules:
  - alert: {ALERTNAME}
    expr: vector(1) > 0
    labels:
      severity: page
    annotations:
      summary: always firing
"""


def actor(name: str) -> tuple[tuple[str, str], ...]:
    return (("x-pharos-actor", name),)


@pytest.fixture(scope="module")
def am(pb):
    """The generated `pharos.alert.v1` messages (`am.pb`) and stubs (`am.grpc`)."""
    from pharos.alert.v1 import alert_pb2, alert_pb2_grpc

    return SimpleNamespace(pb=alert_pb2, grpc=alert_pb2_grpc)


@pytest.fixture(scope="module")
def alerts(am, pharos_server):
    """An AlertService stub on the running server."""
    return am.grpc.AlertServiceStub(pharos_server.channel)


def _wait_for(what: str, probe, timeout_s: float = FIRING_TIMEOUT_S):
    """Calls `probe` until it returns something truthy, for up to `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout_s}s", pytrace=False)
        time.sleep(0.1)


def _ours(am, alerts):
    request = am.pb.ListAlertsRequest(matchers=[f'alertname="{ALERTNAME}"'])
    return list(alerts.ListAlerts(request, timeout=RPC_TIMEOUT_S).alerts)


@pytest.fixture(scope="module")
def firing(am, alerts):
    """Stores the module's rule group and waits for its alert; deletes the group afterwards."""
    reply = alerts.PutRuleGroup(
        am.pb.PutRuleGroupRequest(namespace=NAMESPACE, yaml=RULES), timeout=RPC_TIMEOUT_S
    )
    assert reply.name == GROUP
    found = _wait_for(f"no {ALERTNAME} alert fired", lambda: _ours(am, alerts))
    yield found[0]
    alerts.DeleteRuleGroup(
        am.pb.DeleteRuleGroupRequest(namespace=NAMESPACE, name=GROUP), timeout=RPC_TIMEOUT_S
    )


def test_a_stored_rule_fires_an_alert_that_list_and_get_show(am, alerts, firing):
    assert len(firing.fingerprint) == 16
    int(firing.fingerprint, 16)
    assert firing.state == am.pb.ALERT_STATE_ACTIVE
    assert dict(firing.labels) == {"alertname": ALERTNAME, "severity": "page"}
    assert firing.annotations["summary"] == "always firing"
    assert firing.starts_at_ms > 0 and firing.ends_at_ms > firing.starts_at_ms
    assert list(firing.receivers) == ["default"]
    assert not firing.HasField("acknowledgement")

    got = alerts.GetAlert(
        am.pb.GetAlertRequest(fingerprint=firing.fingerprint), timeout=RPC_TIMEOUT_S
    ).alert
    assert got.fingerprint == firing.fingerprint
    assert dict(got.labels) == dict(firing.labels)

    # A filter that leaves it out, and one on its receiver that keeps it.
    none = alerts.ListAlerts(
        am.pb.ListAlertsRequest(matchers=[f'alertname="{ALERTNAME}"', "severity!=page"]),
        timeout=RPC_TIMEOUT_S,
    )
    assert list(none.alerts) == []
    kept = alerts.ListAlerts(
        am.pb.ListAlertsRequest(matchers=[f'alertname="{ALERTNAME}"'], receiver="def.*"),
        timeout=RPC_TIMEOUT_S,
    )
    assert [a.fingerprint for a in kept.alerts] == [firing.fingerprint]


def test_list_rule_groups_shows_the_stored_group_running(am, alerts, firing):
    def stored_group():
        groups = alerts.ListRuleGroups(am.pb.ListRuleGroupsRequest(), timeout=RPC_TIMEOUT_S).groups
        for group in groups:
            if group.name == GROUP and group.evaluations > 0:
                return group
        return None

    group = _wait_for(f"group {GROUP} was not listed as evaluated", stored_group)
    assert group.file == f"db:{NAMESPACE}"
    assert group.namespace == NAMESPACE
    assert group.running
    assert group.interval_ms == 1000
    assert group.last_evaluation_ms > 0
    assert list(group.errors) == []
    assert group.yaml == RULES
    assert group.updated_at_ms > 0


def _snapshot(reader: WatchReader) -> list:
    events = []
    while True:
        response = reader.next()
        events.extend(response.events)
        if response.snapshot_complete:
            return events


def test_watch_sends_current_then_acknowledged(am, alerts, firing):
    call = alerts.WatchAlerts(
        am.pb.WatchAlertsRequest(matchers=[f'alertname="{ALERTNAME}"']), timeout=60
    )
    reader = WatchReader(call)
    try:
        current = _snapshot(reader)
        assert [event.kind for event in current] == [am.pb.ALERT_EVENT_KIND_CURRENT]
        assert current[0].alert.fingerprint == firing.fingerprint

        acked = alerts.Acknowledge(
            am.pb.AcknowledgeRequest(fingerprint=firing.fingerprint, comment="on it"),
            metadata=actor("py-oncall"),
            timeout=RPC_TIMEOUT_S,
        ).alert
        assert acked.acknowledgement.by == "py-oncall"
        assert acked.acknowledgement.comment == "on it"
        assert acked.acknowledgement.at_ms > 0

        # The rule sends its alert again as it evaluates: UPDATED events may come first.
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while True:
            assert time.monotonic() < deadline, "no ACKNOWLEDGED event"
            events = reader.next().events
            assert len(events) == 1
            event = events[0]
            assert event.alert.fingerprint == firing.fingerprint
            if event.kind == am.pb.ALERT_EVENT_KIND_ACKNOWLEDGED:
                break
            assert event.kind == am.pb.ALERT_EVENT_KIND_UPDATED, event
        assert event.alert.acknowledgement.by == "py-oncall"
        assert event.alert.state == am.pb.ALERT_STATE_ACTIVE
    finally:
        reader.close()

    listed = _ours(am, alerts)
    assert listed[0].acknowledgement.comment == "on it"


def test_silences_are_created_listed_and_expired(am, alerts, firing):
    now_ms = int(time.time() * 1000)
    silence = alerts.CreateSilence(
        am.pb.CreateSilenceRequest(
            matchers=[
                am.pb.Matcher(name="alertname", value=ALERTNAME, type=am.pb.MATCH_TYPE_EQUAL),
                am.pb.Matcher(name="severity", value="page|ticket", type=am.pb.MATCH_TYPE_REGEX),
            ],
            ends_at_ms=now_ms + 3_600_000,
            comment="py maintenance",
        ),
        metadata=actor("py-ops"),
        timeout=RPC_TIMEOUT_S,
    ).silence
    assert len(silence.id) == 36
    assert silence.state == am.pb.SILENCE_STATE_ACTIVE
    assert silence.created_by == "py-ops"
    assert [(m.name, m.value, m.type) for m in silence.matchers] == [
        ("alertname", ALERTNAME, am.pb.MATCH_TYPE_EQUAL),
        ("severity", "page|ticket", am.pb.MATCH_TYPE_REGEX),
    ]

    listed = alerts.ListSilences(
        am.pb.ListSilencesRequest(matchers=[f'alertname="{ALERTNAME}"']), timeout=RPC_TIMEOUT_S
    ).silences
    assert [s.id for s in listed] == [silence.id]
    muted = alerts.GetAlert(
        am.pb.GetAlertRequest(fingerprint=firing.fingerprint), timeout=RPC_TIMEOUT_S
    ).alert
    assert muted.state == am.pb.ALERT_STATE_SUPPRESSED
    assert list(muted.silenced_by) == [silence.id]

    expired = alerts.ExpireSilence(
        am.pb.ExpireSilenceRequest(id=silence.id), timeout=RPC_TIMEOUT_S
    ).silence
    assert expired.state == am.pb.SILENCE_STATE_EXPIRED
    assert expired.ends_at_ms <= int(time.time() * 1000)

    # A silence is active up to and including its end (Alertmanager's boundary), here the
    # millisecond it was expired in; from the next one on it is listed as expired and mutes
    # nothing.
    def listed_as_expired():
        active = alerts.ListSilences(
            am.pb.ListSilencesRequest(exclude_expired=True), timeout=RPC_TIMEOUT_S
        ).silences
        return silence.id not in [s.id for s in active]

    _wait_for("the expired silence was still listed as active", listed_as_expired, 1)
    every = alerts.ListSilences(am.pb.ListSilencesRequest(), timeout=RPC_TIMEOUT_S).silences
    states = {s.id: s.state for s in every}
    assert states[silence.id] == am.pb.SILENCE_STATE_EXPIRED
    again = alerts.GetAlert(
        am.pb.GetAlertRequest(fingerprint=firing.fingerprint), timeout=RPC_TIMEOUT_S
    ).alert
    assert again.state == am.pb.ALERT_STATE_ACTIVE
    assert list(again.silenced_by) == []

    # Expiring it twice, or a silence nobody made, is refused.
    with pytest.raises(grpc.RpcError) as caught:
        alerts.ExpireSilence(am.pb.ExpireSilenceRequest(id="no-such-silence"), timeout=RPC_TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_no_delivery_is_recorded_without_a_receiver(am, alerts, firing):
    attempts = alerts.ListDeliveries(am.pb.ListDeliveriesRequest(limit=10), timeout=RPC_TIMEOUT_S)
    assert list(attempts.attempts) == []
    dead = alerts.ListDeadLetters(am.pb.ListDeadLettersRequest(), timeout=RPC_TIMEOUT_S)
    assert list(dead.dead_letters) == []


def _refused(call, request) -> tuple[grpc.StatusCode, list[tuple[str, str]]]:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=RPC_TIMEOUT_S)
    error = caught.value
    violations = field_violations(error) if error.code() == grpc.StatusCode.INVALID_ARGUMENT else []
    return error.code(), violations


def test_bad_input_is_invalid_argument_naming_the_field(am, alerts):
    code, violations = _refused(alerts.GetAlert, am.pb.GetAlertRequest(fingerprint="xyz"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in violations] == ["fingerprint"]
    assert "16 hexadecimal digits" in violations[0][1]

    code, _ = _refused(
        alerts.Acknowledge, am.pb.AcknowledgeRequest(fingerprint="0123456789abcdef")
    )
    assert code == grpc.StatusCode.NOT_FOUND

    bad_yaml = "groups:\n- name: py-bad\n  rules:\n  - alert: Bad\n    expr: vector(1) >\n"
    code, violations = _refused(
        alerts.PutRuleGroup, am.pb.PutRuleGroupRequest(namespace=NAMESPACE, yaml=bad_yaml)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in violations] == ["yaml"]
    assert "Bad" in violations[0][1]

    code, violations = _refused(
        alerts.PutRuleGroup, am.pb.PutRuleGroupRequest(namespace="no spaces", yaml=RULES)
    )
    assert [field for field, _ in violations] == ["namespace"]

    code, violations = _refused(
        alerts.ListAlerts, am.pb.ListAlertsRequest(matchers=['a="1"', "not a matcher"])
    )
    assert [field for field, _ in violations] == ["matchers[1]"]

    code, violations = _refused(alerts.ListDeliveries, am.pb.ListDeliveriesRequest(limit=5000))
    assert [field for field, _ in violations] == ["limit"]

    code, violations = _refused(
        alerts.CreateSilence,
        am.pb.CreateSilenceRequest(
            matchers=[am.pb.Matcher(name="alertname", value="X")],
            ends_at_ms=int(time.time() * 1000) + 60_000,
        ),
    )
    assert [field for field, _ in violations] == ["matchers[0].type"]

    # A watch with a bad matcher is refused before it streams anything.
    call = alerts.WatchAlerts(am.pb.WatchAlertsRequest(matchers=["=oops"]), timeout=RPC_TIMEOUT_S)
    with pytest.raises(grpc.RpcError) as caught:
        next(iter(call))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(caught.value)] == ["matchers[0]"]
