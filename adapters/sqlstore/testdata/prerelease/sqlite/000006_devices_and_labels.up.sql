-- See postgres/000006_devices_and_labels.up.sql. SQLite cannot drop a column's UNIQUE
-- constraint, so the table is rebuilt; labels holds JSON text.
CREATE TABLE gpus_v6 (
    id                   INTEGER PRIMARY KEY,
    uuid                 TEXT    NOT NULL,
    gpu_instance         TEXT    NOT NULL DEFAULT '',
    gpu_instance_profile TEXT    NOT NULL DEFAULT '',
    hostname             TEXT    NOT NULL,
    gpu_index            INTEGER NOT NULL,
    device               TEXT    NOT NULL,
    model_name           TEXT    NOT NULL,
    driver_version       TEXT    NOT NULL,
    pci_bus_id           TEXT    NOT NULL DEFAULT '',
    labels               TEXT    NOT NULL DEFAULT '{}',
    UNIQUE (uuid, gpu_instance)
);
INSERT INTO gpus_v6 (id, uuid, hostname, gpu_index, device, model_name, driver_version)
    SELECT id, uuid, hostname, gpu_index, device, model_name, driver_version FROM gpus;
DROP TABLE gpus;
ALTER TABLE gpus_v6 RENAME TO gpus;
CREATE INDEX gpus_hostname_idx ON gpus (hostname);
