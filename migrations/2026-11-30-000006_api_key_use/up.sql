-- What an operator needs to tell keys apart and retire unused ones: the key's first
-- characters (never enough to use it) and when it was last used (kept to the minute).
ALTER TABLE api_keys ADD COLUMN prefix TEXT CHECK (length(prefix) <= 10);
ALTER TABLE api_keys ADD COLUMN last_used_at TIMESTAMPTZ;
