-- Metric points, stored the way time-series databases do: one row per distinct
-- series (metric name plus label set) and a narrow points table keyed by the
-- series id, partitioned by day so that retention drops whole partitions.

CREATE TABLE metric_series (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL,
    -- The label set in canonical form (sorted by name, name="value" joined by
    -- ','): with the name, the identity of the series.
    labels_key  TEXT NOT NULL,
    -- The same label set as a JSON object, for label matching.
    labels      JSONB NOT NULL,
    -- Microseconds since the Unix epoch.
    created_at  BIGINT NOT NULL,
    UNIQUE (name, labels_key)
);
CREATE INDEX metric_series_labels ON metric_series USING GIN (labels jsonb_path_ops);

CREATE TABLE metric_points (
    series_id BIGINT NOT NULL,
    -- Microseconds since the Unix epoch.
    time_us   BIGINT NOT NULL,
    value     DOUBLE PRECISION NOT NULL
) PARTITION BY RANGE (time_us);
-- Partitions (metric_points_pYYYYMMDD, one per UTC day) are created ahead of
-- the data by the ingest service.
CREATE INDEX metric_points_series_time ON metric_points (series_id, time_us);
