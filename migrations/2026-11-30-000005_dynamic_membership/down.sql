DELETE FROM segment_members m USING segments s
WHERE s.tenant_id = m.tenant_id AND s.id = m.segment_id AND s.kind = 'dynamic';
DROP TABLE filter_attributes;
DROP TABLE segment_references;
DROP INDEX segments_evaluation_idx;
CREATE INDEX segments_dynamic_idx ON segments (recipients_computed_at) WHERE kind = 'dynamic';
ALTER TABLE segments DROP COLUMN evaluated_on, DROP COLUMN date_relative, DROP COLUMN dated,
    DROP COLUMN conditions, DROP COLUMN depth;
