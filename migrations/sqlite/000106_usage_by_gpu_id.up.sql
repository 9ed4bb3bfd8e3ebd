-- The usage sums a row of a few dozen bytes: the device by its id in gpus, its utilisation's
-- source as a flag. The views usage_hourly and usage_daily give them their plain columns
-- back (uuid, gpu_instance, hostname, model_name, util_signal, …), as they were. Hourly
-- rows are kept as long as the 5-minute tier, daily ones as long as the workload records;
-- the cursor's hours_from says from which hour the hourly ones are kept, once retention has
-- deleted some (a report of a window starting before it counts that day whole).
ALTER TABLE workload_cursor ADD COLUMN hours_from INTEGER;
CREATE TABLE usage_hours (
    hour          INTEGER NOT NULL,
    gpu_id        integer NOT NULL, -- gpus.id
    namespace     text NOT NULL,
    pod           text NOT NULL,
    engine        INTEGER NOT NULL, -- utilisation read from DCGM_FI_PROF_GR_ENGINE_ACTIVE × 100 (a MIG instance)
    gpu_seconds   REAL NOT NULL,
    util_seconds  REAL NOT NULL,
    util_weighted REAL NOT NULL,
    joules        REAL NOT NULL,
    peak_memory_mib REAL,
    samples       bigint NOT NULL,
    PRIMARY KEY (hour, gpu_id, namespace, pod)
) WITHOUT ROWID;

CREATE TABLE usage_days (
    day           INTEGER NOT NULL,
    gpu_id        integer NOT NULL, -- gpus.id
    namespace     text NOT NULL,
    pod           text NOT NULL,
    engine        INTEGER NOT NULL, -- utilisation read from DCGM_FI_PROF_GR_ENGINE_ACTIVE × 100 (a MIG instance)
    gpu_seconds   REAL NOT NULL,
    util_seconds  REAL NOT NULL,
    util_weighted REAL NOT NULL,
    joules        REAL NOT NULL,
    peak_memory_mib REAL,
    samples       bigint NOT NULL,
    PRIMARY KEY (day, gpu_id, namespace, pod)
) WITHOUT ROWID;

INSERT INTO usage_hours SELECT u.hour, g.id, u.namespace, u.pod, CASE WHEN u.util_signal <> 'DCGM_FI_DEV_GPU_UTIL' THEN 1 ELSE 0 END, u.gpu_seconds, u.util_seconds,
    u.util_weighted, u.joules, u.peak_memory_mib, u.samples
FROM usage_hourly u JOIN gpus g ON g.uuid = u.uuid AND g.gpu_instance = u.gpu_instance;
DROP TABLE usage_hourly;

INSERT INTO usage_days SELECT u.day, g.id, u.namespace, u.pod, CASE WHEN u.util_signal <> 'DCGM_FI_DEV_GPU_UTIL' THEN 1 ELSE 0 END, u.gpu_seconds, u.util_seconds,
    u.util_weighted, u.joules, u.peak_memory_mib, u.samples
FROM usage_daily u JOIN gpus g ON g.uuid = u.uuid AND g.gpu_instance = u.gpu_instance;
DROP TABLE usage_daily;

CREATE VIEW usage_hourly AS
SELECT u.hour, g.uuid, g.gpu_instance, u.namespace, u.pod, g.hostname, g.model_name,
       CASE WHEN u.engine <> 0 THEN 'DCGM_FI_PROF_GR_ENGINE_ACTIVE × 100' ELSE 'DCGM_FI_DEV_GPU_UTIL' END AS util_signal,
       u.gpu_seconds, u.util_seconds, u.util_weighted, u.joules, u.peak_memory_mib, u.samples
FROM usage_hours u JOIN gpus g ON g.id = u.gpu_id;

CREATE VIEW usage_daily AS
SELECT u.day, g.uuid, g.gpu_instance, u.namespace, u.pod, g.hostname, g.model_name,
       CASE WHEN u.engine <> 0 THEN 'DCGM_FI_PROF_GR_ENGINE_ACTIVE × 100' ELSE 'DCGM_FI_DEV_GPU_UTIL' END AS util_signal,
       u.gpu_seconds, u.util_seconds, u.util_weighted, u.joules, u.peak_memory_mib, u.samples
FROM usage_days u JOIN gpus g ON g.id = u.gpu_id;
