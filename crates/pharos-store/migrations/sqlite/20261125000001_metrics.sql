-- Metric points: one row per distinct series and a narrow points table keyed
-- by the series id (the PostgreSQL schema, without partitions).

CREATE TABLE metric_series (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    labels_key  TEXT NOT NULL,
    labels      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (name, labels_key)
);

CREATE TABLE metric_points (
    series_id INTEGER NOT NULL,
    time_us   INTEGER NOT NULL,
    -- SQLite stores NaN as NULL: NULL reads back as NaN.
    value     REAL
);
CREATE INDEX metric_points_series_time ON metric_points (series_id, time_us);
