"""The whole platform end to end, driven from Python only (pharos_client, the OpenTelemetry
SDK, `requests`, a webhook receiver):

- the five services as five `pharos serve --target X` processes on one PostgreSQL database,
  and the same flow against one `--target all` process on SQLite: config keys set and watched
  from another process (and followed by ingest as live settings), metrics exported over
  OTLP/gRPC and read back through the Prometheus HTTP API and PromQL over gRPC, a vector index
  created, filled from numpy and searched, and an alert rule whose breach (pushed over OTLP)
  arrives at the webhook with Alertmanager's version 4 body;
- kill -9 of one service process at a time: the others keep serving, and the restarted one
  catches up (what it had is still there, what happened meanwhile reaches it, new work works).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from platform_harness import (
    ALERTNAME,
    CHANNEL_OPTIONS,
    SERVICES,
    ConfigWatcher,
    Platform,
    WebhookReceiver,
    http,
    wait_until,
)

# Deadlines of things that happen asynchronously (a commit, a notification, a reconnect):
# generous, for a loaded 2-core CI runner; a healthy platform takes well under a second.
SETTLE_S = 30
JOB = "platform-e2e"
DIMENSION = 16
VECTORS = 200
REPUSH_S = 2.0


# --- Helpers ----------------------------------------------------------------------------------


def otlp_export(endpoint: str, instance: str, gauges: dict[str, float] | None = None,
                requests_total: dict[str, int] | None = None) -> None:
    """Exports, with the OpenTelemetry SDK over OTLP/gRPC, gauge `platform.temperature` per
    host and counter `platform.requests` per route, from service `JOB`/`instance`."""
    exporter = OTLPMetricExporter(endpoint=endpoint, insecure=True, timeout=10,
                                  channel_options=CHANNEL_OPTIONS)
    # A long interval: force_flush below is the export.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create({"service.name": JOB, "service.instance.id": instance})
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("tests.platform")
    temperature = meter.create_gauge("platform.temperature")
    for host, value in (gauges or {}).items():
        temperature.set(value, {"host": host})
    counter = meter.create_counter("platform.requests", unit="1")
    for route, count in (requests_total or {}).items():
        counter.add(count, {"route": route})
    try:
        assert provider.force_flush(timeout_millis=15_000), "the OTLP export did not finish"
    finally:
        provider.shutdown()


def prom_query(platform: Platform, promql: str) -> list[dict[str, Any]]:
    """The result of the Prometheus HTTP API's instant query on the query service."""
    response = http.get(f"{platform.http('query')}/api/v1/query", params={"query": promql},
                        timeout=10)
    assert response.status_code == 200, f"{response.status_code}: {response.text}"
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def prom_values(platform: Platform, promql: str, by: str = "host") -> dict[str, float]:
    return {s["metric"].get(by, ""): float(s["value"][1]) for s in prom_query(platform, promql)}


def wait_values(platform: Platform, promql: str, expected: dict[str, float], by: str = "host",
                timeout: float = SETTLE_S) -> None:
    """Until `promql` answers exactly `expected` ({label value of `by`: value})."""
    wait_until(f"{promql} == {expected}", lambda: prom_values(platform, promql, by) == expected,
               timeout, on_timeout=lambda: f"answer: {prom_values(platform, promql, by)}")


def wait_notified(webhook: WebhookReceiver, host: str, alertname: str = ALERTNAME,
                  timeout: float = SETTLE_S, repush: Callable[[], None] | None = None,
                  ) -> tuple[Any, dict[str, Any]]:
    """The first webhook notification carrying a firing `alertname` for `host`. `repush`,
    when given, pushes the breach again every REPUSH_S while waiting, as an exporter sends
    its values periodically: a rule evaluates when points of its metric commit, and an
    evaluation that failed (its query service just restarted, say) waits for the next."""
    last_push = time.monotonic()

    def arrived():
        nonlocal last_push
        if repush is not None and time.monotonic() - last_push >= REPUSH_S:
            last_push = time.monotonic()
            repush()
        for notification, alert in webhook.alerts(alertname):
            if alert["labels"].get("host") == host and alert["status"] == "firing":
                return notification, alert
        return None

    return wait_until(f"a {alertname} notification for host={host}", arrived, timeout,
                      interval=0.05,
                      on_timeout=lambda: f"received: {[n.body for n in webhook.received()]}")


def write_points(platform: Platform, points: list[tuple[str, float, dict[str, str]]]) -> None:
    """Writes through pharos_client's IngestService client; every point must be accepted."""
    from pharos_client import point

    result = platform.client("ingest").ingest.write_metrics(
        [point(name, value, labels) for name, value, labels in points]
    )
    assert (result.accepted, result.rejected) == (len(points), 0), result


def alertmanager_alerts(platform: Platform, *filters: str) -> list[dict[str, Any]]:
    response = http.get(f"{platform.http('alert')}/api/v2/alerts",
                        params=[("filter", f) for f in filters], timeout=10)
    assert response.status_code == 200, f"{response.status_code}: {response.text}"
    return response.json()


def wait_suppressed(platform: Platform, host: str, silence_id: str) -> None:
    """Until the Alertmanager API shows the alert of `host` suppressed by `silence_id`."""

    def suppressed():
        shown = alertmanager_alerts(platform, f'host="{host}"')
        return [(a["status"]["state"], a["status"]["silencedBy"]) for a in shown] == [
            ("suppressed", [silence_id])
        ]

    wait_until(f"the alert of {host} suppressed by {silence_id}", suppressed, SETTLE_S,
               on_timeout=lambda: str(alertmanager_alerts(platform, f'host="{host}"')))


def wait_live_setting(platform: Platform, revision: int) -> None:
    """Until the ingest process follows the config service's `pharos.ingest.*` keys at
    `revision` or later (ingest watching config: in another process on the five-process
    layout)."""

    def applied():
        live = platform.process("ingest").health()["components"]["ingest_live_settings"]
        return live["following"] is True and (live["revision"] or 0) >= revision and live

    wait_until(f"ingest follows live settings at revision {revision}", applied, SETTLE_S,
               on_timeout=lambda: str(platform.process("ingest").health()["components"]
                                      ["ingest_live_settings"]))


# --- The flow -----------------------------------------------------------------------------


@dataclass
class FlowState:
    """What the flow left on the platform, for the checks after a kill."""

    tag: str
    prefix: str
    keys: dict[str, str]
    watcher: ConfigWatcher
    index: str
    vectors: np.ndarray
    notified_hosts: list[str] = field(default_factory=list)


def run_flow(platform: Platform, webhook: WebhookReceiver, config_watcher, tag: str) -> FlowState:
    """The flow every layout runs; `platform` says where each service lives."""
    # Config: keys set through the config service reach a watcher in another process
    # (pharos_client's self-resuming watch in a Python subprocess).
    cfg = platform.client("config").config
    prefix = f"platform/{tag}/"
    cfg.set(f"{prefix}seed", "before-the-watch")
    watcher = config_watcher(platform.grpc("config"), prefix)
    seed = watcher.wait_for(f"{prefix}seed", "before-the-watch")
    assert seed["snapshot"] is True, seed
    keys = {}
    for name, value, text in (("feature.enabled", True, "true"), ("pool_size", 20, "20"),
                              ("mode", "fast", "fast")):
        entry = cfg.set(f"{prefix}{name}", value)
        event = watcher.wait_for(entry.key, text)
        assert (event["kind"], event["revision"], event["snapshot"]) == ("put", entry.revision, False)
        keys[entry.key] = text
    assert cfg.get(f"{prefix}pool_size").value == 20
    # The ingest service watches config too: a live setting (the default, 32, raised) applies.
    live = cfg.set("pharos.ingest.limits.max_labels", 40)
    wait_live_setting(platform, live.revision)

    # Telemetry: the OpenTelemetry SDK exports to ingest over OTLP/gRPC; it comes back
    # through the query service's Prometheus HTTP API (and PromQL over gRPC).
    otlp_export(platform.grpc("ingest"), tag, gauges={f"{tag}-a": 21.5, f"{tag}-b": 23.0},
                requests_total={"/cart": 7, "/pay": 2})
    selector = f'platform_temperature{{job="{JOB}",instance="{tag}"}}'
    wait_values(platform, selector, {f"{tag}-a": 21.5, f"{tag}-b": 23.0})
    wait_values(platform, f'platform_requests_total{{instance="{tag}"}}', {"/cart": 7, "/pay": 2},
                by="route")
    series = http.get(f"{platform.http('query')}/api/v1/series",
                      params={"match[]": selector}, timeout=10).json()
    assert series["status"] == "success", series
    assert sorted(s["host"] for s in series["data"]) == [f"{tag}-a", f"{tag}-b"], series
    now = time.time()
    ranged = http.get(f"{platform.http('query')}/api/v1/query_range",
                      params={"query": f"max({selector})", "start": now - 60, "end": now,
                              "step": 15}, timeout=10).json()
    assert ranged["status"] == "success", ranged
    assert float(ranged["data"]["result"][0]["values"][-1][1]) == 23.0, ranged
    total = platform.client("query").query.instant(f"sum({selector})")
    assert [s["value"][1] for s in total] == [44.5], total

    # Search: an index filled from numpy; the nearest neighbour of a stored vector (nudged)
    # is that vector, with a payload filter too.
    search = platform.client("search").search
    index = f"{tag}_docs"
    rng = np.random.default_rng(7)
    vectors = rng.random((VECTORS, DIMENSION), dtype=np.float32)
    search.create_index(index, DIMENSION, metric="l2")
    parity = [{"parity": "even" if i % 2 == 0 else "odd"} for i in range(VECTORS)]
    assert search.upsert(index, ids=np.arange(VECTORS), vectors=vectors, payloads=parity) == VECTORS
    result = search.search(index, vectors[[3, 150]] + 1e-4, k=3)
    assert result.ids[:, 0].tolist() == [3, 150], result.ids
    odd = search.search(index, vectors[40], k=5, filter={"parity": "odd"})
    assert all(i % 2 == 1 for i in odd.ids.tolist()), odd.ids
    assert all(p == {"parity": "odd"} for p in odd.payloads), odd.payloads

    # Alert: a point over the rule's threshold, exported over OTLP, arrives at the webhook
    # as Alertmanager's version 4 notification; the Alertmanager API and gRPC show it firing.
    hot = f"{tag}-hot"

    def push_hot() -> None:
        otlp_export(platform.grpc("ingest"), tag, gauges={hot: 97.5})

    push_hot()
    notification, alert = wait_notified(webhook, hot, repush=push_hot)
    body = notification.body
    assert (body["version"], body["status"], body["receiver"]) == ("4", "firing", "hook"), body
    assert body["groupLabels"] == {"alertname": ALERTNAME, "host": hot}, body
    assert alert["labels"] == {"alertname": ALERTNAME, "host": hot, "severity": "page",
                               "job": JOB, "instance": tag}, alert
    assert alert["annotations"]["summary"] == f"temperature of {hot} is 97.5", alert
    assert alert["endsAt"] == "0001-01-01T00:00:00Z", alert
    shown = alertmanager_alerts(platform, f'host="{hot}"')
    assert [(a["labels"]["alertname"], a["status"]["state"]) for a in shown] == [
        (ALERTNAME, "active")
    ], shown
    listed = platform.client("alert").alert.list_alerts([f'host="{hot}"'])
    assert [(a.labels["alertname"], a.state) for a in listed] == [(ALERTNAME, "active")], listed

    return FlowState(tag=tag, prefix=prefix, keys=keys, watcher=watcher, index=index,
                     vectors=vectors, notified_hosts=[hot])


# --- The layouts --------------------------------------------------------------------------------


def test_five_processes_on_postgres(five_on_postgres, webhook, config_watcher):
    platform = five_on_postgres
    for service in SERVICES:
        health = platform.process(service).health()
        assert health["components"]["database"]["backend"] == "postgres", health
    run_flow(platform, webhook, config_watcher, "pg")


def test_all_in_one_on_sqlite(all_in_one_on_sqlite, webhook, config_watcher):
    platform = all_in_one_on_sqlite
    assert platform.process("config").health()["components"]["database"]["backend"] == "sqlite"
    run_flow(platform, webhook, config_watcher, "lite")


# --- kill -9 ------------------------------------------------------------------------------------


class Probes:
    """Calls showing a service serves, and what the test wrote meanwhile."""

    def __init__(self, platform: Platform, state: FlowState) -> None:
        self.platform = platform
        self.state = state
        self.written_keys: dict[str, str] = dict(state.keys)

    def config(self, step: str) -> None:
        cfg = self.platform.client("config").config
        for key, text in self.written_keys.items():
            assert cfg.get(key).text == text, key
        entry = cfg.set(f"{self.state.prefix}during.{step}", step)
        self.written_keys[entry.key] = step

    def ingest(self, step: str) -> None:
        write_points(self.platform, [("platform_probe", 1.0, {"instance": self.state.tag,
                                                              "step": step})])

    def query(self) -> None:
        tag = self.state.tag
        got = prom_values(self.platform, f'platform_temperature{{instance="{tag}",host="{tag}-a"}}')
        assert got == {f"{tag}-a": 21.5}, got

    def search(self) -> None:
        result = self.platform.client("search").search.search(
            self.state.index, self.state.vectors[[3, 150]] + 1e-4, k=1
        )
        assert result.ids[:, 0].tolist() == [3, 150], result.ids

    def alert(self) -> None:
        shown = alertmanager_alerts(self.platform, f'host="{self.state.tag}-hot"')
        assert [a["status"]["state"] for a in shown] == ["active"], shown

    def ready_but(self, victim: str) -> None:
        for service in SERVICES:
            if service != victim:
                ready = http.get(f"{self.platform.http(service)}/ready", timeout=10)
                assert ready.status_code == 200, f"{service} with {victim} down: {ready.text}"

    def all_but(self, victim: str) -> None:
        """Every service but `victim` answers at once (no retry, no wait), and its process
        still says it is ready (a load balancer keeps sending it traffic)."""
        self.ready_but(victim)
        for service in SERVICES:
            if service == victim:
                continue
            if service in ("config", "ingest"):
                getattr(self, service)(f"{victim}-down")
            else:
                getattr(self, service)()


def test_kill_9_one_service_at_a_time(five_on_postgres, webhook, config_watcher):
    platform = five_on_postgres
    state = run_flow(platform, webhook, config_watcher, "kill")
    tag, cfg_prefix = state.tag, state.prefix
    probes = Probes(platform, state)
    breaches: list[str] = list(state.notified_hosts)

    def push(host: str) -> None:
        write_points(platform, [("platform_temperature", 95.0, {"host": host, "instance": tag})])

    def breach(host: str) -> Callable[[], None]:
        """Pushes a point over the threshold for a new `host`; returns the re-push."""
        push(host)
        breaches.append(host)
        return lambda: push(host)

    # -- config --------------------------------------------------------------------------
    platform.process("config").kill9()
    probes.all_but("config")  # ingest accepts without its config service; the rest serve
    # Ingest notices that its config service is gone (it serves on with what it had).
    wait_until("ingest reports its live settings as not following",
               lambda: platform.process("ingest").health()["components"]["ingest_live_settings"]
               ["following"] is False, SETTLE_S)
    probes.ready_but("config")
    platform.process("config").restart()
    probes.config("config-back")
    # The watcher in the other process resumed by itself: a key set after the restart reaches
    # it, and it saw no change twice.
    after = platform.client("config").config.set(f"{cfg_prefix}after.config", "restart")
    state.watcher.wait_for(after.key, "restart")
    revisions = Counter((e["key"], e["revision"]) for e in state.watcher.events())
    assert [k for k, n in revisions.items() if n > 1] == [], state.watcher.events()
    assert state.watcher.events()[-1]["reconnects"] >= 1, state.watcher.events()
    # And ingest follows its live settings from the restarted config service again.
    live = platform.client("config").config.set("pharos.ingest.limits.max_labels", 41)
    wait_live_setting(platform, live.revision)

    # -- ingest --------------------------------------------------------------------------
    # Acknowledged points survive kill -9: written, killed at once, all there afterwards.
    acked = {str(i): float(i) for i in range(50)}
    write_points(platform, [("platform_acked", v, {"instance": tag, "seq": s})
                            for s, v in acked.items()])
    platform.process("ingest").kill9()
    probes.all_but("ingest")  # query answers what was stored; search, config, alert serve
    # The alert service notifies without ingest: an alert posted to its Alertmanager API.
    posted = http.post(f"{platform.http('alert')}/api/v2/alerts", json=[{
        "labels": {"alertname": "PlatformPosted", "host": f"{tag}-posted"},
        "annotations": {"summary": "posted while ingest is down"},
    }], timeout=10)
    assert posted.status_code == 200, posted.text
    wait_notified(webhook, f"{tag}-posted", alertname="PlatformPosted")
    probes.ready_but("ingest")
    platform.process("ingest").restart()
    wait_values(platform, f'platform_acked{{instance="{tag}"}}', acked, by="seq")
    # New writes work, over OTLP too, and the alert service follows the restarted ingest's feed:
    # a breach notifies as it commits.
    otlp_export(platform.grpc("ingest"), tag, gauges={f"{tag}-c": 30.0})
    wait_values(platform, f'platform_temperature{{instance="{tag}",host="{tag}-c"}}',
                {f"{tag}-c": 30.0})
    again = breach(f"{tag}-after-ingest")
    wait_notified(webhook, f"{tag}-after-ingest", repush=again)
    probes.ingest("ingest-back")

    # -- query ---------------------------------------------------------------------------
    platform.process("query").kill9()
    probes.all_but("query")  # ingest still accepts, alert's API still answers
    write_points(platform, [("platform_temperature", 55.0, {"host": f"{tag}-q", "instance": tag})])
    probes.ready_but("query")
    platform.process("query").restart()
    probes.query()
    # What was written while it was down is there; rules evaluate through it again.
    wait_values(platform, f'platform_temperature{{instance="{tag}",host="{tag}-q"}}',
                {f"{tag}-q": 55.0})
    again = breach(f"{tag}-after-query")
    wait_notified(webhook, f"{tag}-after-query", repush=again)

    # -- search --------------------------------------------------------------------------
    extra = np.random.default_rng(11).random((10, DIMENSION), dtype=np.float32)
    platform.process("search").kill9()
    probes.all_but("search")
    probes.ready_but("search")
    platform.process("search").restart()
    search = platform.client("search").search
    # Its index and vectors are back (from its snapshot dir and the database) ...
    assert [i.name for i in search.list_indexes() if i.name == state.index] == [state.index]
    probes.search()
    # ... and it takes new ones.
    assert search.upsert(state.index, ids=np.arange(VECTORS, VECTORS + 10), vectors=extra) == 10
    assert search.search(state.index, extra[4] + 1e-4, k=1).ids.tolist() == [VECTORS + 4]

    # -- alert ---------------------------------------------------------------------------
    # A silenced breach: held as suppressed, not notified (the final count checks that).
    silenced = f"{tag}-silenced"
    silence = platform.client("alert").alert.create_silence(
        [f'host="{silenced}"'], duration=3600, comment="maintenance", created_by="pytest"
    )
    push(silenced)
    wait_suppressed(platform, silenced, silence.id)
    platform.process("alert").kill9()
    probes.all_but("alert")
    # A breach while no alert process runs.
    breach(f"{tag}-while-alert-down")
    probes.ready_but("alert")
    platform.process("alert").restart()
    # It leads again once its previous lease ran out (alert.lease_ttl, 4 s) ...
    wait_until("the restarted alert process leads",
               lambda: platform.process("alert").health()["components"]["alert"]["leader"], SETTLE_S)
    # ... its silences and alerts are back ...
    silences = platform.client("alert").alert.list_silences(expired=False)
    assert [(s.id, s.state) for s in silences if s.id == silence.id] == [(silence.id, "active")]
    wait_suppressed(platform, silenced, silence.id)
    wait_until("the alert that fired before the kill is listed again",
               lambda: probes.alert() or True, SETTLE_S)
    # ... the breach it missed is evaluated and notified (no re-push: it evaluates its rules
    # as it takes over), and a new one too.
    wait_notified(webhook, f"{tag}-while-alert-down")
    again = breach(f"{tag}-after-alert")
    wait_notified(webhook, f"{tag}-after-alert", repush=again)

    # Every breach notified exactly once: nothing was lost, nothing repeated across the kills.
    firing = Counter(alert["labels"]["host"] for _, alert in webhook.alerts(ALERTNAME)
                     if alert["status"] == "firing")
    assert firing == Counter(breaches), firing
    # And every process serves at the end.
    probes.all_but("")
