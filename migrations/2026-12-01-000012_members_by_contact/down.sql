CREATE INDEX segment_members_contact_idx ON segment_members (tenant_id, contact_id);
DROP INDEX segment_members_by_contact;
