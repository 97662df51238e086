-- The configuration store: current values, the global revision counter and
-- the change log that Watch and History read.

CREATE TABLE config_meta (
    id                 SMALLINT PRIMARY KEY CHECK (id = 1),
    -- The revision of the latest change; every write takes this row's lock,
    -- so revisions commit in the order they are handed out.
    revision           BIGINT NOT NULL,
    -- Changes up to this revision were pruned from config_changes.
    compacted_revision BIGINT NOT NULL
);
INSERT INTO config_meta (id, revision, compacted_revision) VALUES (1, 0, 0);

CREATE TABLE system_configurations (
    key          TEXT COLLATE "C" NOT NULL,
    -- Empty for the base value, else the environment of an override.
    environment  TEXT COLLATE "C" NOT NULL DEFAULT '',
    value        TEXT NOT NULL,
    value_type   BIGINT NOT NULL,
    category     TEXT NOT NULL DEFAULT '',
    description  TEXT NOT NULL DEFAULT '',
    revision     BIGINT NOT NULL,
    -- Microseconds since the Unix epoch.
    updated_at   BIGINT NOT NULL,
    updated_by   TEXT NOT NULL,
    PRIMARY KEY (key, environment)
);
CREATE INDEX system_configurations_category ON system_configurations (category);
CREATE INDEX system_configurations_updated_at ON system_configurations (updated_at);

CREATE TABLE config_changes (
    revision       BIGINT PRIMARY KEY,
    -- 1 = put, 2 = delete.
    kind           BIGINT NOT NULL,
    key            TEXT COLLATE "C" NOT NULL,
    environment    TEXT COLLATE "C" NOT NULL,
    -- The value written by a put, or the value removed by a delete.
    value          TEXT NOT NULL,
    -- The value before the change; NULL when the entry did not exist.
    previous_value TEXT,
    value_type     BIGINT NOT NULL,
    category       TEXT NOT NULL,
    description    TEXT NOT NULL,
    changed_at     BIGINT NOT NULL,
    actor          TEXT NOT NULL
);
CREATE INDEX config_changes_key ON config_changes (key, environment, revision);
CREATE INDEX config_changes_changed_at ON config_changes (changed_at);
