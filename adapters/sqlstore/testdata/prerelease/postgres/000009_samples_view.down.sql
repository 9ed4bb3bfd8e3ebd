DROP FUNCTION telemetry_samples(timestamptz, timestamptz);
DROP VIEW samples;
DROP FUNCTION telemetry_chunk_points(bytea);
