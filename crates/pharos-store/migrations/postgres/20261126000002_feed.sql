-- The committed-data feed: every committed batch of metric points or security
-- events gets the next position (gap-free, in commit order: the head row is
-- locked from the increment to the commit) and its items as a payload, so
-- that a subscriber resumes from its last position with none missed and none
-- repeated. Payloads are kept for a short retention only.

CREATE TABLE ingest_feed_head (
    id        SMALLINT PRIMARY KEY CHECK (id = 1),
    position  BIGINT NOT NULL
);
INSERT INTO ingest_feed_head (id, position) VALUES (1, 0);

CREATE TABLE ingest_feed (
    position      BIGINT PRIMARY KEY,
    -- 1 metric points, 2 security events.
    signal        SMALLINT NOT NULL,
    -- Microseconds since the Unix epoch.
    committed_us  BIGINT NOT NULL,
    items         INTEGER NOT NULL,
    -- Metric points: 24 bytes each (series id, time in microseconds, value as
    -- float64 bits, big-endian). Security events: a protobuf
    -- pharos.ingest.v1.WriteSecurityEventsRequest.
    payload       BYTEA NOT NULL
);
-- Payloads are mostly incompressible numbers: do not spend CPU trying.
ALTER TABLE ingest_feed ALTER COLUMN payload SET STORAGE EXTERNAL;
CREATE INDEX ingest_feed_committed ON ingest_feed (committed_us);
