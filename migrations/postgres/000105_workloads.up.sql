-- Workload records (domain/workload): a row per workload's hold on a device, made by the
-- collectors' recorder as the samples settle and kept for --retention-workloads, after the
-- samples are gone. Plain columns, to be read in SQL as they are.
CREATE TABLE workloads (
    id              bigserial PRIMARY KEY,
    uuid            text        NOT NULL,
    gpu_instance    text        NOT NULL DEFAULT '', -- GPU_I_ID of a MIG instance
    hostname        text        NOT NULL,
    model_name      text        NOT NULL,
    namespace       text        NOT NULL,
    pod             text        NOT NULL,
    container       text        NOT NULL,
    start_time      timestamptz NOT NULL, -- the first sample
    end_time        timestamptz NOT NULL, -- the end of the time the last sample stands for
    last_seen       timestamptz NOT NULL, -- the last utilisation sample
    open            boolean     NOT NULL, -- the workload still holds the device
    gpu_hours       double precision NOT NULL, -- shared GPUs split, MIG instances by their slices
    util_hours      double precision NOT NULL, -- of gpu_hours, with a utilisation value
    mean_util       double precision,          -- %; NULL without a value
    p95_util        double precision,          -- %, a whole percent
    idle_hours      double precision NOT NULL, -- of util_hours, under 1 %
    idle_fraction   double precision,          -- idle_hours / util_hours
    util_signal     text        NOT NULL,      -- the field utilisation was read from
    energy_kwh      double precision NOT NULL,
    peak_memory_mib double precision,
    sm_active       double precision, -- DCGM_FI_PROF_SM_ACTIVE's mean (a ratio); NULL when not reported
    sm_hours        double precision NOT NULL DEFAULT 0,
    tensor_active   double precision, -- DCGM_FI_PROF_PIPE_TENSOR_ACTIVE's
    tensor_hours    double precision NOT NULL DEFAULT 0,
    dram_active     double precision, -- DCGM_FI_PROF_DRAM_ACTIVE's
    dram_hours      double precision NOT NULL DEFAULT 0,
    events          integer     NOT NULL, -- health events that began during the hold
    samples         bigint      NOT NULL, -- utilisation samples
    util_histogram  text        NOT NULL  -- {"percent": hours, …}: what the next pass adds to
);
CREATE INDEX workloads_end_idx ON workloads (end_time DESC, id DESC);
CREATE INDEX workloads_namespace_idx ON workloads (namespace, end_time DESC);
CREATE INDEX workloads_open_idx ON workloads (id) WHERE open;

-- How far the samples are recorded: the end of the last pass.
CREATE TABLE workload_cursor (
    id      integer PRIMARY KEY CHECK (id = 1),
    through timestamptz NOT NULL
);
