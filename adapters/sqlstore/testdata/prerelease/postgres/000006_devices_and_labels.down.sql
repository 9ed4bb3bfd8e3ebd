-- MIG instances' rows go with their samples' identity; only whole GPUs stay.
DELETE FROM gpus WHERE gpu_instance <> '';
ALTER TABLE gpus DROP CONSTRAINT gpus_uuid_instance_key;
ALTER TABLE gpus ADD CONSTRAINT gpus_uuid_key UNIQUE (uuid);
ALTER TABLE gpus DROP COLUMN gpu_instance, DROP COLUMN gpu_instance_profile, DROP COLUMN pci_bus_id, DROP COLUMN labels;
