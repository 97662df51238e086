-- A random identity of this store's vectors, written into index snapshots so that a replica
-- never applies the change log of one database to a snapshot taken from another.
ALTER TABLE vector_meta ADD COLUMN store_id TEXT NOT NULL DEFAULT '';
UPDATE vector_meta SET store_id = lower(hex(randomblob(16)));
