-- Spans, log records, security events and metric rollups: the PostgreSQL
-- schema in plain tables (times in nanoseconds, ids as blobs, JSON as text).

CREATE TABLE spans (
    trace_id        BLOB NOT NULL,
    span_id         BLOB NOT NULL,
    parent_span_id  BLOB,
    trace_state     TEXT NOT NULL,
    service         TEXT NOT NULL,
    name            TEXT NOT NULL,
    kind            INTEGER NOT NULL,
    start_ns        INTEGER NOT NULL,
    end_ns          INTEGER NOT NULL,
    status_code     INTEGER NOT NULL,
    status_message  TEXT NOT NULL,
    attributes      TEXT NOT NULL,
    events          TEXT NOT NULL,
    links           TEXT NOT NULL,
    resource        TEXT NOT NULL
);
CREATE INDEX spans_trace ON spans (trace_id);
CREATE INDEX spans_parent ON spans (parent_span_id) WHERE parent_span_id IS NOT NULL;
CREATE INDEX spans_start ON spans (start_ns);
CREATE INDEX spans_operation ON spans (service, name, start_ns);

CREATE TABLE logs (
    time_ns          INTEGER NOT NULL,
    observed_ns      INTEGER NOT NULL,
    service          TEXT NOT NULL,
    severity_number  INTEGER NOT NULL,
    severity_text    TEXT NOT NULL,
    body             TEXT NOT NULL,
    attributes       TEXT NOT NULL,
    resource         TEXT NOT NULL,
    trace_id         BLOB,
    span_id          BLOB
);
CREATE INDEX logs_time ON logs (time_ns);
CREATE INDEX logs_service_time ON logs (service, time_ns);
CREATE INDEX logs_trace ON logs (trace_id) WHERE trace_id IS NOT NULL;

CREATE TABLE security_events (
    time_ns     INTEGER NOT NULL,
    event_type  TEXT NOT NULL,
    severity    INTEGER NOT NULL,
    user_id     TEXT NOT NULL,
    source_ip   TEXT,
    resource    TEXT NOT NULL,
    service     TEXT NOT NULL,
    attributes  TEXT NOT NULL
);
CREATE INDEX security_events_time ON security_events (time_ns);
CREATE INDEX security_events_user_time ON security_events (user_id, time_ns);
CREATE INDEX security_events_ip_time ON security_events (source_ip, time_ns);
CREATE INDEX security_events_type_time ON security_events (event_type, time_ns);

CREATE TABLE metric_rollups_1h (
    series_id  INTEGER NOT NULL,
    bucket_us  INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    sum        REAL NOT NULL,
    min        REAL NOT NULL,
    max        REAL NOT NULL,
    PRIMARY KEY (series_id, bucket_us)
);
CREATE TABLE metric_rollups_1d (
    series_id  INTEGER NOT NULL,
    bucket_us  INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    sum        REAL NOT NULL,
    min        REAL NOT NULL,
    max        REAL NOT NULL,
    PRIMARY KEY (series_id, bucket_us)
);

CREATE TABLE metric_rollup_pending (
    hour_us  INTEGER PRIMARY KEY
);
