-- See postgres/000004_sealed_chunks.up.sql; 0 and 1 here. No partial index: the embedded
-- store does not compact by default (each index costs a quarter of SQLite's write speed), so
-- finding unsealed chunks reads the table.
ALTER TABLE chunks ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
