DROP INDEX chunks_unsealed_idx;
ALTER TABLE chunks DROP COLUMN sealed;
