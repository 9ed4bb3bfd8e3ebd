-- See postgres/000101_gpu_metric_ids.up.sql; a JSON array here.
ALTER TABLE gpus ADD COLUMN metric_ids TEXT NOT NULL DEFAULT '[]';
UPDATE gpus SET metric_ids = (SELECT coalesce(json_group_array(metric_id), '[]')
    FROM (SELECT metric_id FROM gpu_metrics WHERE gpu_id = gpus.id ORDER BY metric_id));
DROP TABLE gpu_metrics;
