ALTER TABLE pruned DROP COLUMN samples_before;
