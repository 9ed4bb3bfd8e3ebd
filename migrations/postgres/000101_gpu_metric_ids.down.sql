CREATE TABLE gpu_metrics (
    gpu_id    integer NOT NULL,
    metric_id integer NOT NULL,
    PRIMARY KEY (gpu_id, metric_id)
);
INSERT INTO gpu_metrics SELECT id, unnest(metric_ids) FROM gpus;
ALTER TABLE gpus DROP COLUMN metric_ids;
