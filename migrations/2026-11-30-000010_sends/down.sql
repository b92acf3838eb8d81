DROP TABLE send_recipients;
DROP TABLE sends;
ALTER TABLE contacts DROP COLUMN last_messaged_at;
