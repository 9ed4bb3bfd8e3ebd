-- Which metrics each device reports, in its own row rather than a table of pairs: the count
-- bounds how far back the latest value of each is looked for, and a table of pairs took
-- more room than two hours of a fleet's samples.
ALTER TABLE gpus ADD COLUMN metric_ids integer[] NOT NULL DEFAULT '{}';
UPDATE gpus g SET metric_ids = ARRAY(SELECT p.metric_id FROM gpu_metrics p WHERE p.gpu_id = g.id ORDER BY p.metric_id);
DROP TABLE gpu_metrics;
