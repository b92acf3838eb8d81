-- Dynamic segments' members are stored like static ones (segment_members), maintained as
-- contacts, memberships and filters change, so reading a dynamic segment costs what
-- reading a static one does, and a filter naming another segment tests membership
-- instead of re-evaluating that segment's filter (which, inlined, let one filter grow
-- without bound).

-- The longest chain of references starting at the segment, counting itself (1 for a
-- static segment and for a filter naming none); dynamic segments are evaluated in this
-- order, so the segments a filter names are up to date before it is.
ALTER TABLE segments ADD COLUMN depth SMALLINT NOT NULL DEFAULT 1 CHECK (depth BETWEEN 1 AND 3);
-- The filter's own conditions (not those of the segments it names).
ALTER TABLE segments ADD COLUMN conditions SMALLINT NOT NULL DEFAULT 0 CHECK (conditions >= 0);
-- Whether the filter's own conditions depend on the date (relative dates,
-- anniversaries), and whether membership does (its own conditions, or a segment it
-- names): the latter are evaluated again every day.
ALTER TABLE segments ADD COLUMN dated BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE segments ADD COLUMN date_relative BOOLEAN NOT NULL DEFAULT FALSE;
-- The day the members were last evaluated in full; NULL until they have been.
ALTER TABLE segments ADD COLUMN evaluated_on DATE;
DROP INDEX segments_dynamic_idx;
CREATE INDEX segments_evaluation_idx ON segments (evaluated_on) WHERE kind = 'dynamic';

-- The segments a filter names. The foreign key makes a named segment impossible to
-- delete, whatever runs concurrently.
CREATE TABLE segment_references (
    tenant_id     BIGINT NOT NULL,
    segment_id    BIGINT NOT NULL,
    referenced_id BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, referenced_id),
    FOREIGN KEY (tenant_id, segment_id) REFERENCES segments (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, referenced_id) REFERENCES segments (tenant_id, id)
);
CREATE INDEX segment_references_referenced_idx ON segment_references (tenant_id, referenced_id);

-- The attributes a filter names, protected the same way.
CREATE TABLE filter_attributes (
    tenant_id     BIGINT NOT NULL,
    segment_id    BIGINT NOT NULL,
    attribute_key TEXT   NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, attribute_key),
    FOREIGN KEY (tenant_id, segment_id) REFERENCES segments (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, attribute_key) REFERENCES attribute_definitions (tenant_id, key)
);
CREATE INDEX filter_attributes_key_idx ON filter_attributes (tenant_id, attribute_key);

-- Existing filters: their references and attributes, read from the stored JSON. Their
-- members, depth and counts are computed by the service's evaluation job, which takes
-- every dynamic segment whose evaluated_on is NULL.
INSERT INTO segment_references (tenant_id, segment_id, referenced_id)
SELECT DISTINCT s.tenant_id, s.id, (ref #>> '{}')::bigint
FROM segments s, jsonb_path_query(s.filter, '$.** ? (@.field == "segment").value') AS ref
WHERE s.kind = 'dynamic' AND jsonb_typeof(ref) = 'number'
  AND EXISTS (SELECT 1 FROM segments t WHERE t.tenant_id = s.tenant_id AND t.id = (ref #>> '{}')::bigint);
INSERT INTO filter_attributes (tenant_id, segment_id, attribute_key)
SELECT DISTINCT s.tenant_id, s.id, substr(field #>> '{}', 12)
FROM segments s, jsonb_path_query(s.filter, '$.**.field') AS field
WHERE s.kind = 'dynamic' AND jsonb_typeof(field) = 'string' AND (field #>> '{}') LIKE 'attributes.%'
  AND EXISTS (SELECT 1 FROM attribute_definitions d
              WHERE d.tenant_id = s.tenant_id AND d.key = substr(field #>> '{}', 12));
