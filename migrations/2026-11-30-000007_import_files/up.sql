-- Imports: which import added each member, so one import can be reverted exactly (the
-- members it added and that are still members), and contacts found by e-mail for email
-- segments' files.
ALTER TABLE segment_members ADD COLUMN import_id BIGINT;
CREATE INDEX segment_members_import ON segment_members (tenant_id, import_id)
    WHERE import_id IS NOT NULL;
CREATE INDEX contacts_email_folded ON contacts (tenant_id, lower(email))
    WHERE email IS NOT NULL;
