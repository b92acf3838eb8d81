-- When `recipients` was last counted from a dynamic segment's filter; NULL for static
-- segments, whose count is kept exact on every write.
ALTER TABLE segments ADD COLUMN recipients_computed_at TIMESTAMPTZ;
CREATE INDEX segments_dynamic_idx ON segments (recipients_computed_at) WHERE kind = 'dynamic';
