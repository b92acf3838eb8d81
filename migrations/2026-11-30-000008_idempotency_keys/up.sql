-- Idempotency-Key: the first answer to a POST, kept 24 h per tenant (0 for the admin API),
-- replayed to a retry with the same key and body. `status` is null while the first
-- request runs; a row running for more than 5 minutes is taken over (its process died).
CREATE TABLE idempotency_keys (
    tenant_id    BIGINT      NOT NULL,
    key          TEXT        NOT NULL,
    request_hash BYTEA       NOT NULL,
    status       SMALLINT,
    content_type TEXT,
    location     TEXT,
    body         BYTEA,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
