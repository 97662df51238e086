-- The search service's vectors: index definitions, every vector with its payload (the source
-- of truth that replicas and restarts load from), one global revision and the change log that
-- replicas replay.

CREATE TABLE vector_meta (
    id                 SMALLINT PRIMARY KEY CHECK (id = 1),
    -- The revision of the latest change; every write takes this row's lock, so revisions
    -- commit in the order they are handed out.
    revision           BIGINT NOT NULL,
    -- Changes up to this revision were pruned from vector_changes.
    compacted_revision BIGINT NOT NULL
);
INSERT INTO vector_meta (id, revision, compacted_revision) VALUES (1, 0, 0);

CREATE TABLE vector_indexes (
    name       TEXT COLLATE "C" PRIMARY KEY,
    -- The definition as JSON: dimension, metric, kind and parameters.
    definition TEXT NOT NULL,
    revision   BIGINT NOT NULL,
    -- IVF_PQ: the trained quantizers every replica installs; NULL until trained.
    quantizers BYTEA,
    created_at BIGINT NOT NULL
);

CREATE TABLE vectors (
    index_name TEXT COLLATE "C" NOT NULL,
    -- The caller's u64 id, stored with the same bits.
    id         BIGINT NOT NULL,
    -- dimension x f32, little-endian.
    vector     BYTEA NOT NULL,
    -- The payload as a JSON object of strings.
    payload    TEXT NOT NULL,
    -- The change that wrote this row.
    revision   BIGINT NOT NULL,
    PRIMARY KEY (index_name, id)
);
CREATE INDEX vectors_revision ON vectors (revision);

CREATE TABLE vector_changes (
    revision   BIGINT PRIMARY KEY,
    -- 1 = create index, 2 = drop index, 3 = upsert, 4 = delete, 5 = trained.
    kind       BIGINT NOT NULL,
    index_name TEXT COLLATE "C" NOT NULL,
    -- Create: the definition. Otherwise empty.
    detail     TEXT NOT NULL,
    -- Delete: the ids removed, u64 little-endian. Otherwise empty.
    ids        BYTEA NOT NULL,
    -- Vectors written or removed.
    count      BIGINT NOT NULL,
    changed_at BIGINT NOT NULL
);
CREATE INDEX vector_changes_changed_at ON vector_changes (changed_at);
