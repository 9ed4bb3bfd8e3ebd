DROP TABLE workload_cursor;
DROP TABLE workloads;
