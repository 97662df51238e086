-- Metric chunks: every point one series has in one 10-minute window, compressed (about 1-3
-- bytes a point instead of about 98 as rows with their index). Range reads take a window's
-- points from its chunk once the window is compacted, and from metric_points while it is
-- pending; metric_points stays the record that writes append to.
CREATE TABLE metric_chunks (
    series_id BIGINT NOT NULL,
    -- Start of the window, microseconds since the Unix epoch (a multiple of 600,000,000).
    window_us BIGINT NOT NULL,
    points    INTEGER NOT NULL,
    data      BYTEA NOT NULL,
    PRIMARY KEY (series_id, window_us)
) PARTITION BY RANGE (window_us);
-- Partitions (metric_chunks_pYYYYMMDD, one per UTC day) are created by the compaction.

-- Windows whose points changed since they were last compacted: every batch of points marks
-- the windows it touched, in its own transaction, and the compaction takes the marks.
CREATE TABLE metric_chunk_pending (
    window_us BIGINT PRIMARY KEY
);

-- Points stored before chunks existed are compacted too.
INSERT INTO metric_chunk_pending (window_us)
SELECT DISTINCT time_us - (((time_us % 600000000) + 600000000) % 600000000) FROM metric_points
ON CONFLICT DO NOTHING;

-- The compaction reads one window of every series: a BRIN index on time finds its blocks
-- (points arrive roughly in time order) for a few kilobytes per day of points.
CREATE INDEX metric_points_time_brin ON metric_points USING BRIN (time_us)
    WITH (autosummarize = on);
