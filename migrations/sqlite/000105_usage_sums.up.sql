-- The workload recorder's hourly and daily usage sums, and what it needs to find samples
-- stored late. A store recorded before: its first pass finds every batch stored "since"
-- the epoch, so it goes back to the oldest sample kept and sums the hours from there.
-- When the pass that set the cursor began (the store's clock), which tells batches stored
-- since, perhaps unseen by it; and until when passes redo the hourly usage only, since
-- samples arrived after their hours were recorded.
ALTER TABLE workload_cursor ADD COLUMN started_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workload_cursor ADD COLUMN replay_until INTEGER;

-- What each device's samples under each workload (or none: namespace and pod '') add up to,
-- an hour a row, as a usage report accounts them: GET /api/v1/fleet/usage sums the whole
-- hours of a long window here and reads the samples only for its edges. Kept as long as
-- the workload records.
CREATE TABLE usage_hourly (
    hour          INTEGER NOT NULL,
    uuid          text NOT NULL,
    gpu_instance  text NOT NULL,
    namespace     text NOT NULL,
    pod           text NOT NULL,
    hostname      text NOT NULL,
    model_name    text NOT NULL,
    util_signal   text NOT NULL,
    gpu_seconds   REAL NOT NULL, -- shares applied, as gpu_hours × 3600
    util_seconds  REAL NOT NULL, -- of which with a utilisation value
    util_weighted REAL NOT NULL, -- utilisation × seconds
    joules        REAL NOT NULL,
    peak_memory_mib REAL,
    samples       bigint NOT NULL,
    PRIMARY KEY (hour, uuid, gpu_instance, namespace, pod)
) WITHOUT ROWID;

-- usage_hourly's days, summed as they are written: a month's report reads 30 rows a device
-- and workload, not 720.
CREATE TABLE usage_daily (
    day           INTEGER NOT NULL,
    uuid          text NOT NULL,
    gpu_instance  text NOT NULL,
    namespace     text NOT NULL,
    pod           text NOT NULL,
    hostname      text NOT NULL,
    model_name    text NOT NULL,
    util_signal   text NOT NULL,
    gpu_seconds   REAL NOT NULL,
    util_seconds  REAL NOT NULL,
    util_weighted REAL NOT NULL,
    joules        REAL NOT NULL,
    peak_memory_mib REAL,
    samples       bigint NOT NULL,
    PRIMARY KEY (day, uuid, gpu_instance, namespace, pod)
) WITHOUT ROWID;
