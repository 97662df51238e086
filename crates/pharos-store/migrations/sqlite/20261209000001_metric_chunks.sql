-- Metric chunks: every point one series has in one 10-minute window, compressed (the
-- PostgreSQL schema, without partitions).
CREATE TABLE metric_chunks (
    series_id INTEGER NOT NULL,
    window_us INTEGER NOT NULL,
    points    INTEGER NOT NULL,
    data      BLOB NOT NULL,
    PRIMARY KEY (series_id, window_us)
);

CREATE TABLE metric_chunk_pending (
    window_us INTEGER PRIMARY KEY
);

INSERT INTO metric_chunk_pending (window_us)
SELECT DISTINCT time_us - (((time_us % 600000000) + 600000000) % 600000000) FROM metric_points
WHERE true ON CONFLICT DO NOTHING;
