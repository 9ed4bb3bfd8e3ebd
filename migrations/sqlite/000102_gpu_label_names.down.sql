ALTER TABLE gpus DROP COLUMN hostname_label;
ALTER TABLE gpus DROP COLUMN id_from;
