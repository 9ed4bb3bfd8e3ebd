DROP TABLE usage_daily;
DROP TABLE usage_hourly;
ALTER TABLE workload_cursor DROP COLUMN replay_until;
ALTER TABLE workload_cursor DROP COLUMN started_at;
