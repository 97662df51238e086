-- The configuration store: current values, the global revision counter and
-- the change log that Watch and History read. Same shape as the PostgreSQL
-- schema; see migrations/postgres for the meaning of each column.

CREATE TABLE config_meta (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    revision           INTEGER NOT NULL,
    compacted_revision INTEGER NOT NULL
);
INSERT INTO config_meta (id, revision, compacted_revision) VALUES (1, 0, 0);

CREATE TABLE system_configurations (
    key          TEXT NOT NULL,
    environment  TEXT NOT NULL DEFAULT '',
    value        TEXT NOT NULL,
    value_type   INTEGER NOT NULL,
    category     TEXT NOT NULL DEFAULT '',
    description  TEXT NOT NULL DEFAULT '',
    revision     INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    updated_by   TEXT NOT NULL,
    PRIMARY KEY (key, environment)
) WITHOUT ROWID;
CREATE INDEX system_configurations_category ON system_configurations (category);
CREATE INDEX system_configurations_updated_at ON system_configurations (updated_at);

CREATE TABLE config_changes (
    revision       INTEGER PRIMARY KEY,
    kind           INTEGER NOT NULL,
    key            TEXT NOT NULL,
    environment    TEXT NOT NULL,
    value          TEXT NOT NULL,
    previous_value TEXT,
    value_type     INTEGER NOT NULL,
    category       TEXT NOT NULL,
    description    TEXT NOT NULL,
    changed_at     INTEGER NOT NULL,
    actor          TEXT NOT NULL
);
CREATE INDEX config_changes_key ON config_changes (key, environment, revision);
CREATE INDEX config_changes_changed_at ON config_changes (changed_at);
