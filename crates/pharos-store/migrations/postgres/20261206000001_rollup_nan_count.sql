-- Rollups count the ordinary NaN points of their bucket apart (staleness
-- markers, which PromQL's range functions skip, are not counted at all), so
-- that the query service can tell when a rollup answers *_over_time exactly
-- as the points would (a NaN makes sum_over_time NaN but is not in `sum`).
ALTER TABLE metric_rollups_1h ADD COLUMN nan_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE metric_rollups_1d ADD COLUMN nan_count BIGINT NOT NULL DEFAULT 0;
