-- The alert service's state, written so that a kill -9 loses nothing: rule evaluation state,
-- the alerts it holds, silences, the notification log, the outbox of notifications with their
-- delivery attempts, the leader lease, rule groups stored through the API and acknowledgements.
-- JSON is stored as TEXT; times are milliseconds since the Unix epoch.

CREATE TABLE alert_rule_state (
    group_key     TEXT COLLATE "C" PRIMARY KEY,
    -- The evaluation state of one rule group (pending and firing instances) as JSON.
    state         TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE alert_alerts (
    fingerprint   TEXT COLLATE "C" PRIMARY KEY,
    labels        TEXT NOT NULL,
    annotations   TEXT NOT NULL,
    starts_at_ms  BIGINT NOT NULL,
    ends_at_ms    BIGINT NOT NULL,
    generator_url TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    -- The end time was not given by the sender but set by the resolve timeout.
    timeout       BOOLEAN NOT NULL
);

CREATE TABLE alert_silences (
    id            TEXT COLLATE "C" PRIMARY KEY,
    -- The label matchers as JSON.
    matchers      TEXT NOT NULL,
    starts_at_ms  BIGINT NOT NULL,
    ends_at_ms    BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    created_by    TEXT NOT NULL,
    comment       TEXT NOT NULL
);
CREATE INDEX alert_silences_ends_at ON alert_silences (ends_at_ms);

-- What was last delivered per aggregation group and integration, so that a restart neither
-- repeats nor drops a notification.
CREATE TABLE alert_notification_log (
    group_key     TEXT COLLATE "C" NOT NULL,
    integration   TEXT COLLATE "C" NOT NULL,
    -- The fingerprints notified as firing and as resolved, as JSON.
    firing        TEXT NOT NULL,
    resolved      TEXT NOT NULL,
    sent_at_ms    BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (group_key, integration)
);
CREATE INDEX alert_notification_log_expires_at ON alert_notification_log (expires_at_ms);

-- Notifications written before they are sent: 'pending' until a 2xx marks them 'delivered'
-- (with their notification-log entry, in the same transaction) or the last attempt marks them
-- 'dead'. A restart sends the pending ones again with the same idempotency key.
CREATE TABLE alert_outbox (
    idempotency_key   TEXT COLLATE "C" PRIMARY KEY,
    group_key         TEXT NOT NULL,
    integration       TEXT NOT NULL,
    receiver          TEXT NOT NULL,
    url               TEXT NOT NULL,
    body              TEXT NOT NULL,
    -- The notification-log entry written when the notification is delivered.
    log_firing        TEXT NOT NULL,
    log_resolved      TEXT NOT NULL,
    log_expires_at_ms BIGINT NOT NULL,
    created_at_ms     BIGINT NOT NULL,
    -- 'pending', 'delivered' or 'dead'.
    state             TEXT NOT NULL,
    -- When it was delivered or given up; NULL while pending.
    finished_at_ms    BIGINT NULL,
    last_error        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alert_outbox_state_created_at ON alert_outbox (state, created_at_ms);

-- Every delivery attempt, for the API and for debugging receivers.
CREATE TABLE alert_delivery_attempts (
    id              BIGSERIAL PRIMARY KEY,
    idempotency_key TEXT COLLATE "C" NOT NULL,
    attempt         INTEGER NOT NULL,
    at_ms           BIGINT NOT NULL,
    duration_ms     BIGINT NOT NULL,
    outcome         TEXT NOT NULL,
    -- NULL when no response arrived.
    http_status     INTEGER NULL,
    error           TEXT NOT NULL
);
CREATE INDEX alert_delivery_attempts_idempotency_key ON alert_delivery_attempts (idempotency_key);
CREATE INDEX alert_delivery_attempts_at ON alert_delivery_attempts (at_ms);

-- Named leases: the replica holding one (until expires_at_ms) evaluates and notifies.
CREATE TABLE alert_leases (
    name          TEXT COLLATE "C" PRIMARY KEY,
    holder        TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);

-- Rule groups stored through the API, as the YAML they were given in.
CREATE TABLE alert_rule_groups (
    namespace     TEXT COLLATE "C" NOT NULL,
    name          TEXT COLLATE "C" NOT NULL,
    yaml          TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (namespace, name)
);

-- Who acknowledged a firing alert, and why.
CREATE TABLE alert_acknowledgements (
    fingerprint     TEXT COLLATE "C" PRIMARY KEY,
    acknowledged_by TEXT NOT NULL,
    comment         TEXT NOT NULL,
    at_ms           BIGINT NOT NULL
);
