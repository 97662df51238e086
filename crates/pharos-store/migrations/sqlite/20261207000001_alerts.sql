-- The alert service's state (see the PostgreSQL migration for the meaning of each table and
-- column). JSON is stored as TEXT; times are milliseconds since the Unix epoch; booleans are
-- INTEGER 0 or 1.

CREATE TABLE alert_rule_state (
    group_key     TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

CREATE TABLE alert_alerts (
    fingerprint   TEXT PRIMARY KEY,
    labels        TEXT NOT NULL,
    annotations   TEXT NOT NULL,
    starts_at_ms  INTEGER NOT NULL,
    ends_at_ms    INTEGER NOT NULL,
    generator_url TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    timeout       INTEGER NOT NULL
);

CREATE TABLE alert_silences (
    id            TEXT PRIMARY KEY,
    matchers      TEXT NOT NULL,
    starts_at_ms  INTEGER NOT NULL,
    ends_at_ms    INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    comment       TEXT NOT NULL
);
CREATE INDEX alert_silences_ends_at ON alert_silences (ends_at_ms);

CREATE TABLE alert_notification_log (
    group_key     TEXT NOT NULL,
    integration   TEXT NOT NULL,
    firing        TEXT NOT NULL,
    resolved      TEXT NOT NULL,
    sent_at_ms    INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (group_key, integration)
);
CREATE INDEX alert_notification_log_expires_at ON alert_notification_log (expires_at_ms);

CREATE TABLE alert_outbox (
    idempotency_key   TEXT PRIMARY KEY,
    group_key         TEXT NOT NULL,
    integration       TEXT NOT NULL,
    receiver          TEXT NOT NULL,
    url               TEXT NOT NULL,
    body              TEXT NOT NULL,
    log_firing        TEXT NOT NULL,
    log_resolved      TEXT NOT NULL,
    log_expires_at_ms INTEGER NOT NULL,
    created_at_ms     INTEGER NOT NULL,
    state             TEXT NOT NULL,
    finished_at_ms    INTEGER NULL,
    last_error        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alert_outbox_state_created_at ON alert_outbox (state, created_at_ms);

CREATE TABLE alert_delivery_attempts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    at_ms           INTEGER NOT NULL,
    duration_ms     INTEGER NOT NULL,
    outcome         TEXT NOT NULL,
    http_status     INTEGER NULL,
    error           TEXT NOT NULL
);
CREATE INDEX alert_delivery_attempts_idempotency_key ON alert_delivery_attempts (idempotency_key);
CREATE INDEX alert_delivery_attempts_at ON alert_delivery_attempts (at_ms);

CREATE TABLE alert_leases (
    name          TEXT PRIMARY KEY,
    holder        TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL
);

CREATE TABLE alert_rule_groups (
    namespace     TEXT NOT NULL,
    name          TEXT NOT NULL,
    yaml          TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
);

CREATE TABLE alert_acknowledgements (
    fingerprint     TEXT PRIMARY KEY,
    acknowledged_by TEXT NOT NULL,
    comment         TEXT NOT NULL,
    at_ms           INTEGER NOT NULL
);
