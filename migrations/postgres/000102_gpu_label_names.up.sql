-- How the exporter named a device, so that its series are given back as it sent them:
-- id_from is where the uuid column came from ('' the UUID label, 'uuid' dcgm-exporter 1.x's
-- label, 'pci_bus_id' or 'gpu' an identity made from the host and that label, for streams
-- relabelled without a UUID); hostname_label is the host label's name when not Hostname.
ALTER TABLE gpus ADD COLUMN id_from text NOT NULL DEFAULT '';
ALTER TABLE gpus ADD COLUMN hostname_label text NOT NULL DEFAULT '';
