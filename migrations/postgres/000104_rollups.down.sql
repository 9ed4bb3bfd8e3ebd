DROP VIEW samples_1h;
DROP VIEW samples_5m;
DROP FUNCTION telemetry_samples_1h(timestamptz, timestamptz);
DROP FUNCTION telemetry_samples_5m(timestamptz, timestamptz);
DROP FUNCTION telemetry_rollup_buckets(integer, timestamptz, timestamptz);
DROP TABLE rollup_floors;
DROP TABLE rollups;
