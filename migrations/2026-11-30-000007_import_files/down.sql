DROP INDEX contacts_email_folded;
DROP INDEX segment_members_import;
ALTER TABLE segment_members DROP COLUMN import_id;
