-- The hourly tier of a day is written once the day is over rather than as each of its
-- windows seals: rewriting a week's row 84 times (and a day's 5-minute row 12) left ~40
-- dead copies of it behind each, which an import or a backlog caught up turned into 8× the
-- tiers' size on disk. coarsened says whether a 5-minute row's day is in the coarser rows;
-- reads take the days it is not from the 5-minute rows (adapters/sqlstore/summaries.go).
ALTER TABLE rollups ADD COLUMN coarsened boolean NOT NULL DEFAULT true;
CREATE INDEX rollups_uncoarsened_idx ON rollups (start) WHERE coarsened = false;
