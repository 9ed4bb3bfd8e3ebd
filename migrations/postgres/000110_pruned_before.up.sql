-- The time before which retention last deleted samples: the workload recorder computes no
-- hour again from before it (its other samples are gone: only the late ones would count).
-- NULL until retention next deletes some.
ALTER TABLE pruned ADD COLUMN samples_before timestamptz;
