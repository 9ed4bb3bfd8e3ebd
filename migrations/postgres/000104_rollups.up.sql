-- Downsampled tiers (adapters/sqlstore/engine/rollup.go): a row per tier, device and span,
-- its buckets encoded as a block of aggregates — count, sum, min, max, first, last and a
-- counter's increase per series and bucket — so that a year of a GPU's hourly buckets takes
-- kilobytes, not a row per bucket, and rows are long enough for PostgreSQL to compress.
-- Written by the compactor as it seals a window, in the same transaction; SQL users read
-- them as rows through samples_5m, samples_1h and the functions below.
CREATE TABLE rollups (
    step    integer     NOT NULL, -- the tier's bucket in seconds: 300 or 3600
    gpu_id  integer     NOT NULL,
    start   timestamptz NOT NULL, -- the span's start: a day of 5-minute buckets, 7 days of hourly ones
    samples bigint      NOT NULL, -- the samples its buckets count
    covered bigint      NOT NULL DEFAULT 0, -- of a 5-minute row, the two-hour windows it holds: a bit each
    data    bytea       NOT NULL,
    PRIMARY KEY (step, gpu_id, start)
);
ALTER TABLE rollups ALTER COLUMN data SET STORAGE MAIN;
-- The fleet's rows of a time range, and what retention deletes.
CREATE INDEX rollups_step_start_idx ON rollups (step, start);

-- Where retention has cut each tier: the start of the oldest span it keeps. A coarser row is
-- computed from the finer rows of its span, so one whose finer rows are partly gone is left
-- as it is (points arriving months late).
CREATE TABLE rollup_floors (
    step  integer PRIMARY KEY,
    start timestamptz NOT NULL
);

-- A tier's buckets as rows: one per series and bucket, its aggregates in columns.
CREATE FUNCTION telemetry_rollup_buckets(tier_step integer, since timestamptz, until timestamptz)
RETURNS TABLE ("time" timestamptz, uuid text, gpu_instance text, hostname text, gpu_index integer, device text,
               model_name text, metric text, container text, pod text, namespace text,
               count bigint, sum double precision, min double precision, max double precision,
               first double precision, last double precision, increase double precision, avg double precision)
LANGUAGE sql STABLE AS $$
    SELECT b.t, g.uuid, g.gpu_instance, g.hostname, g.gpu_index, g.device, g.model_name, m.name,
           b.container, b.pod, b.namespace, b.count::bigint, b.sum, b.min, b.max, b.first, b.last,
           coalesce(b.increase, b.last - b.first), b.sum / b.count
    FROM (
        SELECT r.gpu_id, timestamptz 'epoch' + p.ts * interval '1 microsecond' AS t, p.metric_id / 8 AS metric_id,
               p.container, p.pod, p.namespace,
               max(p.value) FILTER (WHERE p.metric_id % 8 = 0) AS count,
               max(p.value) FILTER (WHERE p.metric_id % 8 = 1) AS sum,
               max(p.value) FILTER (WHERE p.metric_id % 8 = 2) AS min,
               max(p.value) FILTER (WHERE p.metric_id % 8 = 3) AS max,
               max(p.value) FILTER (WHERE p.metric_id % 8 = 4) AS first,
               max(p.value) FILTER (WHERE p.metric_id % 8 = 5) AS last,
               max(p.value) FILTER (WHERE p.metric_id % 8 = 6) AS increase
        FROM rollups r
        CROSS JOIN LATERAL telemetry_chunk_points(r.data) p
        WHERE r.step = tier_step
          AND r.start <= until AND r.start > since - CASE tier_step WHEN 300 THEN interval '1 day' ELSE interval '7 days' END
          AND timestamptz 'epoch' + p.ts * interval '1 microsecond' BETWEEN since AND until
        GROUP BY 1, 2, 3, 4, 5, 6
    ) b
    JOIN gpus g ON g.id = b.gpu_id
    JOIN metrics m ON m.id = b.metric_id
$$;

-- The buckets of a time range, decoding only the rows that overlap it.
CREATE FUNCTION telemetry_samples_5m(since timestamptz, until timestamptz)
RETURNS TABLE ("time" timestamptz, uuid text, gpu_instance text, hostname text, gpu_index integer, device text,
               model_name text, metric text, container text, pod text, namespace text,
               count bigint, sum double precision, min double precision, max double precision,
               first double precision, last double precision, increase double precision, avg double precision)
LANGUAGE sql STABLE AS $$ SELECT * FROM telemetry_rollup_buckets(300, since, until) $$;
CREATE FUNCTION telemetry_samples_1h(since timestamptz, until timestamptz)
RETURNS TABLE ("time" timestamptz, uuid text, gpu_instance text, hostname text, gpu_index integer, device text,
               model_name text, metric text, container text, pod text, namespace text,
               count bigint, sum double precision, min double precision, max double precision,
               first double precision, last double precision, increase double precision, avg double precision)
LANGUAGE sql STABLE AS $$ SELECT * FROM telemetry_rollup_buckets(3600, since, until) $$;

-- Every bucket kept, as the views of raw samples show every sample.
CREATE VIEW samples_5m AS SELECT * FROM telemetry_rollup_buckets(300, '-infinity', 'infinity');
CREATE VIEW samples_1h AS SELECT * FROM telemetry_rollup_buckets(3600, '-infinity', 'infinity');
