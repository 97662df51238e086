-- Rollups count the ordinary NaN points of their bucket apart (staleness
-- markers are not counted at all): see the PostgreSQL migration.
ALTER TABLE metric_rollups_1h ADD COLUMN nan_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metric_rollups_1d ADD COLUMN nan_count INTEGER NOT NULL DEFAULT 0;
