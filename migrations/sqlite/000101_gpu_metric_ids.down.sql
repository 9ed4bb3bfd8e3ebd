CREATE TABLE gpu_metrics (
    gpu_id    INTEGER NOT NULL,
    metric_id INTEGER NOT NULL,
    PRIMARY KEY (gpu_id, metric_id)
) WITHOUT ROWID;
INSERT INTO gpu_metrics SELECT gpus.id, j.value FROM gpus, json_each(gpus.metric_ids) j;
ALTER TABLE gpus DROP COLUMN metric_ids;
