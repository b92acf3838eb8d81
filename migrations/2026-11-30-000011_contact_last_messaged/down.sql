ALTER TABLE contacts ADD COLUMN last_messaged_at TIMESTAMPTZ;
UPDATE contacts c SET last_messaged_at = m.last_messaged_at
FROM contact_last_messaged m WHERE m.tenant_id = c.tenant_id AND m.contact_id = c.id;
DROP TABLE contact_last_messaged;
