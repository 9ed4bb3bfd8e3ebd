-- Blocks change nothing in SQLite's schema: it compresses nothing, and has no view to teach
-- them to. This keeps the versions in step.
SELECT 1;
