-- PostgreSQL partitions chunks at this version; SQLite returns the space retention frees
-- with incremental vacuum instead (adapters/sqlstore/retention.go). This keeps the versions
-- in step.
SELECT 1;
