-- The hourly tier of a day is written once the day is over (see the PostgreSQL migration).
ALTER TABLE rollups ADD COLUMN coarsened BOOLEAN NOT NULL DEFAULT 1;
CREATE INDEX rollups_uncoarsened_idx ON rollups (start) WHERE coarsened = false;
