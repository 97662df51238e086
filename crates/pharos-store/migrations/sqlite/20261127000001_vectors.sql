-- The search service's vectors: index definitions, every vector with its payload (the source
-- of truth that replicas and restarts load from), one global revision and the change log that
-- replicas replay.

CREATE TABLE vector_meta (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    -- The revision of the latest change; every write takes this row's lock, so revisions
    -- commit in the order they are handed out.
    revision           INTEGER NOT NULL,
    -- Changes up to this revision were pruned from vector_changes.
    compacted_revision INTEGER NOT NULL
);
INSERT INTO vector_meta (id, revision, compacted_revision) VALUES (1, 0, 0);

CREATE TABLE vector_indexes (
    name       TEXT PRIMARY KEY,
    -- The definition as JSON: dimension, metric, kind and parameters.
    definition TEXT NOT NULL,
    revision   INTEGER NOT NULL,
    -- IVF_PQ: the trained quantizers every replica installs; NULL until trained.
    quantizers BLOB,
    created_at INTEGER NOT NULL
);

CREATE TABLE vectors (
    index_name TEXT NOT NULL,
    -- The caller's u64 id, stored with the same bits.
    id         INTEGER NOT NULL,
    -- dimension x f32, little-endian.
    vector     BLOB NOT NULL,
    -- The payload as a JSON object of strings.
    payload    TEXT NOT NULL,
    -- The change that wrote this row.
    revision   INTEGER NOT NULL,
    PRIMARY KEY (index_name, id)
);
CREATE INDEX vectors_revision ON vectors (revision);

CREATE TABLE vector_changes (
    revision   INTEGER PRIMARY KEY,
    -- 1 = create index, 2 = drop index, 3 = upsert, 4 = delete, 5 = trained.
    kind       INTEGER NOT NULL,
    index_name TEXT NOT NULL,
    -- Create: the definition. Otherwise empty.
    detail     TEXT NOT NULL,
    -- Delete: the ids removed, u64 little-endian. Otherwise empty.
    ids        BLOB NOT NULL,
    -- Vectors written or removed.
    count      INTEGER NOT NULL,
    changed_at INTEGER NOT NULL
);
CREATE INDEX vector_changes_changed_at ON vector_changes (changed_at);
