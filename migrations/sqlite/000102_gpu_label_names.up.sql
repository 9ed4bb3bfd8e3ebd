-- See postgres/000102_gpu_label_names.up.sql.
ALTER TABLE gpus ADD COLUMN id_from TEXT NOT NULL DEFAULT '';
ALTER TABLE gpus ADD COLUMN hostname_label TEXT NOT NULL DEFAULT '';
