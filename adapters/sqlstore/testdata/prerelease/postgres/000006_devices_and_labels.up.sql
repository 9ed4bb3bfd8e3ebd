-- A MIG instance is a device of its own: a row per (uuid, gpu_instance), gpu_instance being
-- dcgm-exporter's GPU_I_ID, '' for a whole GPU. labels holds every other label of the
-- device's series (instance, job, …), readable as labels->>'instance'.
ALTER TABLE gpus
    ADD COLUMN gpu_instance         text  NOT NULL DEFAULT '',
    ADD COLUMN gpu_instance_profile text  NOT NULL DEFAULT '',
    ADD COLUMN pci_bus_id           text  NOT NULL DEFAULT '',
    ADD COLUMN labels               jsonb NOT NULL DEFAULT '{}';
ALTER TABLE gpus DROP CONSTRAINT gpus_uuid_key;
ALTER TABLE gpus ADD CONSTRAINT gpus_uuid_instance_key UNIQUE (uuid, gpu_instance);
