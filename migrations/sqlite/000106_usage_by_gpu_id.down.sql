CREATE TABLE usage_hourly_plain AS SELECT * FROM usage_hourly;
CREATE TABLE usage_daily_plain AS SELECT * FROM usage_daily;
DROP VIEW usage_daily;
DROP VIEW usage_hourly;
DROP TABLE usage_days;
DROP TABLE usage_hours;
CREATE TABLE usage_hourly (
    hour INTEGER NOT NULL, uuid text NOT NULL, gpu_instance text NOT NULL, namespace text NOT NULL, pod text NOT NULL,
    hostname text NOT NULL, model_name text NOT NULL, util_signal text NOT NULL, gpu_seconds REAL NOT NULL,
    util_seconds REAL NOT NULL, util_weighted REAL NOT NULL, joules REAL NOT NULL, peak_memory_mib REAL,
    samples bigint NOT NULL, PRIMARY KEY (hour, uuid, gpu_instance, namespace, pod)
) WITHOUT ROWID;
INSERT INTO usage_hourly SELECT * FROM usage_hourly_plain;
CREATE TABLE usage_daily (
    day INTEGER NOT NULL, uuid text NOT NULL, gpu_instance text NOT NULL, namespace text NOT NULL, pod text NOT NULL,
    hostname text NOT NULL, model_name text NOT NULL, util_signal text NOT NULL, gpu_seconds REAL NOT NULL,
    util_seconds REAL NOT NULL, util_weighted REAL NOT NULL, joules REAL NOT NULL, peak_memory_mib REAL,
    samples bigint NOT NULL, PRIMARY KEY (day, uuid, gpu_instance, namespace, pod)
) WITHOUT ROWID;
INSERT INTO usage_daily SELECT * FROM usage_daily_plain;
DROP TABLE usage_hourly_plain;
DROP TABLE usage_daily_plain;
ALTER TABLE workload_cursor DROP COLUMN hours_from;
