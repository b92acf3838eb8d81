-- CSV imports run with `Prefer: respond-async`: polled by id from any replica. A running
-- job touches updated_at as it goes; one that stops doing so died with its process.
CREATE TABLE imports (
    tenant_id   BIGINT      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          BIGSERIAL,
    segment_id  BIGINT      NOT NULL,
    status      TEXT        NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    bytes_total BIGINT      NOT NULL,
    bytes_read  BIGINT      NOT NULL DEFAULT 0,
    rows_read   BIGINT      NOT NULL DEFAULT 0,
    report      JSONB,
    error       JSONB,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
