-- PostgreSQL gets a samples view at this version; SQLite has no procedural language to decode
-- chunks with, so it only keeps the versions in step.
SELECT 1;
