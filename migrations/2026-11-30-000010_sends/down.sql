DROP TABLE send_recipients;
DROP TABLE sends;
DROP INDEX contacts_opted_out_idx;
ALTER TABLE contacts DROP COLUMN last_messaged_at;
