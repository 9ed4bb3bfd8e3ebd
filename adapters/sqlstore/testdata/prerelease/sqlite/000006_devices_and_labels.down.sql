CREATE TABLE gpus_v5 (
    id             INTEGER PRIMARY KEY,
    uuid           TEXT    NOT NULL UNIQUE,
    hostname       TEXT    NOT NULL,
    gpu_index      INTEGER NOT NULL,
    device         TEXT    NOT NULL,
    model_name     TEXT    NOT NULL,
    driver_version TEXT    NOT NULL
);
INSERT INTO gpus_v5 SELECT id, uuid, hostname, gpu_index, device, model_name, driver_version FROM gpus WHERE gpu_instance = '';
DROP TABLE gpus;
ALTER TABLE gpus_v5 RENAME TO gpus;
CREATE INDEX gpus_hostname_idx ON gpus (hostname);
