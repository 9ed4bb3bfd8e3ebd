-- Same schema as postgres/000001_init.up.sql; ts holds Unix microseconds (PostgreSQL's
-- timestamptz resolution), so that both stores answer alike.
CREATE TABLE gpus (
    id             INTEGER PRIMARY KEY,
    uuid           TEXT    NOT NULL UNIQUE,
    hostname       TEXT    NOT NULL,
    gpu_index      INTEGER NOT NULL,
    device         TEXT    NOT NULL,
    model_name     TEXT    NOT NULL,
    driver_version TEXT    NOT NULL
);
CREATE INDEX gpus_hostname_idx ON gpus (hostname);

CREATE TABLE metrics (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE batches (
    id        TEXT    PRIMARY KEY,
    samples   INTEGER NOT NULL,
    stored_at INTEGER NOT NULL
);

CREATE TABLE samples (
    gpu_id    INTEGER NOT NULL,
    metric_id INTEGER NOT NULL,
    ts        INTEGER NOT NULL,
    value     REAL    NOT NULL,
    container TEXT,
    pod       TEXT,
    namespace TEXT
);
CREATE INDEX samples_gpu_ts_idx ON samples (gpu_id, ts);
