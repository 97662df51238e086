-- SQLite stores a NaN as NULL, which loses which NaN it was; Prometheus'
-- staleness marker is a NaN with its own bit pattern and must stay distinct
-- from an ordinary NaN. A NaN point keeps NULL in value and its bits here
-- (as a signed 64-bit integer); rows of other points leave it NULL.
ALTER TABLE metric_points ADD COLUMN nan_bits INTEGER;
