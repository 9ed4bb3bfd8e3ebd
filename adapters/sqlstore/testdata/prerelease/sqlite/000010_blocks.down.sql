DROP INDEX chunks_unsealed_idx;
