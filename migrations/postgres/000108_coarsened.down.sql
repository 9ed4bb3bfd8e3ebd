DROP INDEX rollups_uncoarsened_idx;
ALTER TABLE rollups DROP COLUMN coarsened;
