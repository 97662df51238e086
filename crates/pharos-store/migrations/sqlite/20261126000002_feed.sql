-- The committed-data feed (see the PostgreSQL migration).

CREATE TABLE ingest_feed_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    position  INTEGER NOT NULL
);
INSERT INTO ingest_feed_head (id, position) VALUES (1, 0);

CREATE TABLE ingest_feed (
    position      INTEGER PRIMARY KEY,
    signal        INTEGER NOT NULL,
    committed_us  INTEGER NOT NULL,
    items         INTEGER NOT NULL,
    payload       BLOB NOT NULL
);
CREATE INDEX ingest_feed_committed ON ingest_feed (committed_us);
