DROP INDEX segments_dynamic_idx;
ALTER TABLE segments DROP COLUMN recipients_computed_at;
