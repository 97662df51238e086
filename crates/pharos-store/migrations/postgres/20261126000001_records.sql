-- Spans, log records and security events, each partitioned by time so that
-- retention drops whole partitions; and the hourly and daily rollups of
-- metric points. Times of spans, logs and security events are nanoseconds
-- since the Unix epoch (as OpenTelemetry sends them); ids are raw bytes.
-- Attributes and resources are JSON objects with typed values.

CREATE TABLE spans (
    trace_id        BYTEA NOT NULL,
    span_id         BYTEA NOT NULL,
    -- NULL for a root span.
    parent_span_id  BYTEA,
    trace_state     TEXT NOT NULL,
    service         TEXT NOT NULL,
    name            TEXT NOT NULL,
    -- OpenTelemetry SpanKind: 0 unspecified, 1 internal, 2 server, 3 client,
    -- 4 producer, 5 consumer.
    kind            SMALLINT NOT NULL,
    start_ns        BIGINT NOT NULL,
    end_ns          BIGINT NOT NULL,
    -- OpenTelemetry status code: 0 unset, 1 ok, 2 error.
    status_code     SMALLINT NOT NULL,
    status_message  TEXT NOT NULL,
    attributes      JSONB NOT NULL,
    -- [{"time_ns": .., "name": .., "attributes": {..}}, ..]
    events          JSONB NOT NULL,
    -- [{"trace_id": hex, "span_id": hex, "trace_state": .., "attributes": {..}}, ..]
    links           JSONB NOT NULL,
    resource        JSONB NOT NULL
) PARTITION BY RANGE (start_ns);
-- Day partitions spans_pYYYYMMDD are created ahead by the ingest service.
CREATE INDEX spans_trace ON spans (trace_id);
CREATE INDEX spans_parent ON spans (parent_span_id) WHERE parent_span_id IS NOT NULL;
CREATE INDEX spans_start ON spans (start_ns);
CREATE INDEX spans_operation ON spans (service, name, start_ns);

-- Spans of traces with an error, kept past the spans' own retention: expiry
-- copies them here before it drops a day of spans.
CREATE TABLE spans_retained (LIKE spans) PARTITION BY RANGE (start_ns);
CREATE INDEX spans_retained_trace ON spans_retained (trace_id);
CREATE INDEX spans_retained_start ON spans_retained (start_ns);
CREATE INDEX spans_retained_operation ON spans_retained (service, name, start_ns);

CREATE TABLE logs (
    time_ns          BIGINT NOT NULL,
    observed_ns      BIGINT NOT NULL,
    service          TEXT NOT NULL,
    -- OpenTelemetry SeverityNumber 0..24.
    severity_number  SMALLINT NOT NULL,
    severity_text    TEXT NOT NULL,
    -- A string body as sent; any other body as its JSON text.
    body             TEXT NOT NULL,
    attributes       JSONB NOT NULL,
    resource         JSONB NOT NULL,
    trace_id         BYTEA,
    span_id          BYTEA
) PARTITION BY RANGE (time_ns);
CREATE INDEX logs_time ON logs (time_ns);
CREATE INDEX logs_service_time ON logs (service, time_ns);
CREATE INDEX logs_trace ON logs (trace_id) WHERE trace_id IS NOT NULL;

-- Security events by retention class: critical (severity 5) kept forever in a
-- plain table, high (4) in month partitions, the rest in day partitions.
CREATE TABLE security_events (
    time_ns     BIGINT NOT NULL,
    event_type  TEXT NOT NULL,
    -- 1 info, 2 low, 3 medium, 4 high, 5 critical.
    severity    SMALLINT NOT NULL,
    user_id     TEXT NOT NULL,
    source_ip   INET,
    resource    TEXT NOT NULL,
    service     TEXT NOT NULL,
    attributes  JSONB NOT NULL
) PARTITION BY LIST (severity);
CREATE TABLE security_events_critical PARTITION OF security_events FOR VALUES IN (5);
CREATE TABLE security_events_high PARTITION OF security_events FOR VALUES IN (4)
    PARTITION BY RANGE (time_ns);
CREATE TABLE security_events_other PARTITION OF security_events DEFAULT
    PARTITION BY RANGE (time_ns);
CREATE INDEX security_events_time ON security_events (time_ns);
CREATE INDEX security_events_user_time ON security_events (user_id, time_ns);
CREATE INDEX security_events_ip_time ON security_events (source_ip, time_ns);
CREATE INDEX security_events_type_time ON security_events (event_type, time_ns);

-- Hourly and daily rollups of every series: count, sum, min and max of its
-- points in the bucket (NaN points are not counted).
CREATE TABLE metric_rollups_1h (
    series_id  BIGINT NOT NULL,
    -- Start of the hour, microseconds since the Unix epoch.
    bucket_us  BIGINT NOT NULL,
    count      BIGINT NOT NULL,
    sum        DOUBLE PRECISION NOT NULL,
    min        DOUBLE PRECISION NOT NULL,
    max        DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (series_id, bucket_us)
) PARTITION BY RANGE (bucket_us);
CREATE TABLE metric_rollups_1d (
    series_id  BIGINT NOT NULL,
    -- Start of the UTC day, microseconds since the Unix epoch.
    bucket_us  BIGINT NOT NULL,
    count      BIGINT NOT NULL,
    sum        DOUBLE PRECISION NOT NULL,
    min        DOUBLE PRECISION NOT NULL,
    max        DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (series_id, bucket_us)
) PARTITION BY RANGE (bucket_us);
-- Partitions: metric_rollups_1h_pYYYYMMDD by day, metric_rollups_1d_pYYYYMM by
-- month.

-- Hours that received points since they were last rolled up. The writer adds
-- the hours of each batch in the batch's own transaction, so a crash never
-- loses a pending rollup.
CREATE TABLE metric_rollup_pending (
    hour_us  BIGINT PRIMARY KEY
);
