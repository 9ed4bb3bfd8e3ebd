-- Workload records (domain/workload): a row per workload's hold on a device, made by the
-- collectors' recorder as the samples settle and kept for --retention-workloads, after the
-- samples are gone. Plain columns, to be read in SQL as they are; times in Unix microseconds.
CREATE TABLE workloads (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid            text        NOT NULL,
    gpu_instance    text        NOT NULL DEFAULT '', -- GPU_I_ID of a MIG instance
    hostname        text        NOT NULL,
    model_name      text        NOT NULL,
    namespace       text        NOT NULL,
    pod             text        NOT NULL,
    container       text        NOT NULL,
    start_time      INTEGER     NOT NULL, -- the first sample
    end_time        INTEGER     NOT NULL, -- the end of the time the last sample stands for
    last_seen       INTEGER     NOT NULL, -- the last utilisation sample
    open            INTEGER     NOT NULL, -- the workload still holds the device
    gpu_hours       REAL NOT NULL, -- shared GPUs split, MIG instances by their slices
    util_hours      REAL NOT NULL, -- of gpu_hours, with a utilisation value
    mean_util       REAL,          -- %; NULL without a value
    p95_util        REAL,          -- %, a whole percent
    idle_hours      REAL NOT NULL, -- of util_hours, under 1 %
    idle_fraction   REAL,          -- idle_hours / util_hours
    util_signal     text        NOT NULL,      -- the field utilisation was read from
    energy_kwh      REAL NOT NULL,
    peak_memory_mib REAL,
    sm_active       REAL, -- DCGM_FI_PROF_SM_ACTIVE's mean (a ratio); NULL when not reported
    sm_hours        REAL NOT NULL DEFAULT 0,
    tensor_active   REAL, -- DCGM_FI_PROF_PIPE_TENSOR_ACTIVE's
    tensor_hours    REAL NOT NULL DEFAULT 0,
    dram_active     REAL, -- DCGM_FI_PROF_DRAM_ACTIVE's
    dram_hours      REAL NOT NULL DEFAULT 0,
    events          integer     NOT NULL, -- health events that began during the hold
    samples         bigint      NOT NULL, -- utilisation samples
    util_histogram  text        NOT NULL  -- {"percent": hours, …}: what the next pass adds to
);
CREATE INDEX workloads_end_idx ON workloads (end_time DESC, id DESC);
CREATE INDEX workloads_namespace_idx ON workloads (namespace, end_time DESC);
CREATE INDEX workloads_open_idx ON workloads (id) WHERE open = 1;

-- How far the samples are recorded: the end of the last pass.
CREATE TABLE workload_cursor (
    id      integer PRIMARY KEY CHECK (id = 1),
    through INTEGER NOT NULL
);
