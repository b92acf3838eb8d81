DROP TABLE send_recipients;
DROP TABLE sends;
ALTER TABLE contacts RESET (fillfactor);
DROP INDEX contacts_opted_out_idx;
ALTER TABLE contacts DROP COLUMN last_messaged_at;
