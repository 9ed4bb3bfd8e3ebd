-- Downsampled tiers (adapters/sqlstore/engine/rollup.go): a row per tier, device and span,
-- its buckets encoded as a block of aggregates, written by the compactor as it seals a
-- window. Times are Unix microseconds, as in chunks.
CREATE TABLE rollups (
    step    INTEGER NOT NULL, -- the tier's bucket in seconds: 300 or 3600
    gpu_id  INTEGER NOT NULL,
    start   INTEGER NOT NULL, -- the span's start
    samples INTEGER NOT NULL, -- the samples its buckets count
    covered INTEGER NOT NULL DEFAULT 0, -- of a 5-minute row, the two-hour windows it holds: a bit each
    data    BLOB    NOT NULL,
    PRIMARY KEY (step, gpu_id, start)
) WITHOUT ROWID;
CREATE INDEX rollups_step_start_idx ON rollups (step, start);
-- Where retention has cut each tier: the start of the oldest span it keeps. A coarser row is
-- computed from the finer rows of its span, so one whose finer rows are partly gone is left
-- as it is (points arriving months late).
CREATE TABLE rollup_floors (
    step  INTEGER PRIMARY KEY,
    start INTEGER NOT NULL
);
