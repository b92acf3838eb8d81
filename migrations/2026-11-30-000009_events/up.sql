-- Events: every change an integration may follow, written in the transaction of the
-- change (an outbox). A transaction stages its events in a temporary table as it goes
-- and moves them here as its last statement, taking ids from the tenant's counter: the
-- counter's row stays locked until commit, so a tenant's events become visible in id
-- order and a reader following `after=` never skips one that commits late.
CREATE TABLE event_counters (
    tenant_id BIGINT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    last_id   BIGINT NOT NULL
);

-- No foreign key to tenants: checking one per row more than doubled the cost of
-- recording a large import's events. A deleted tenant's events go with retention.
CREATE TABLE events (
    tenant_id   BIGINT      NOT NULL,
    id          BIGINT      NOT NULL,
    type        TEXT        NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    -- What the event is about; the rest of `data` (an import's report) in `details`.
    segment_id  BIGINT,
    contact_id  BIGINT,
    details     JSONB,
    PRIMARY KEY (tenant_id, id)
);
-- Retention removes events by age. Rows arrive in time order, so a BRIN index finds the
-- old ones at a fraction of a B-tree's cost on every insert.
CREATE INDEX events_occurred_at_idx ON events USING brin (occurred_at);

-- Webhooks: where a tenant's events are pushed. Each remembers the last event it
-- delivered (`delivered_through`); the batch being attempted is fixed by
-- `batch_through`, so a retry sends the same events under the same message id.
CREATE TABLE webhooks (
    tenant_id         BIGINT      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                BIGSERIAL   NOT NULL,
    url               TEXT        NOT NULL,
    event_types       TEXT[]      NOT NULL,
    description       TEXT,
    secret            TEXT        NOT NULL,
    enabled           BOOLEAN     NOT NULL DEFAULT TRUE,
    disabled_reason   TEXT,
    delivered_through BIGINT      NOT NULL,
    batch_through     BIGINT,
    attempt           INTEGER     NOT NULL DEFAULT 0,
    failing_since     TIMESTAMPTZ,
    next_attempt_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A replica delivering holds the webhook until `leased_until`, under a random token
    -- that its outcome must present: a replica that lost the lease cannot record one.
    leased_until      TIMESTAMPTZ,
    lease             BIGINT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX webhooks_due_idx ON webhooks (next_attempt_at) WHERE enabled;

-- Recent delivery attempts, for the delivery log.
CREATE TABLE webhook_deliveries (
    tenant_id       BIGINT      NOT NULL,
    webhook_id      BIGINT      NOT NULL,
    id              BIGSERIAL   NOT NULL,
    event_ids       BIGINT[]    NOT NULL,
    attempt         INTEGER     NOT NULL,
    status_code     SMALLINT,
    error           TEXT,
    at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    next_attempt_at TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, webhook_id, id),
    FOREIGN KEY (tenant_id, webhook_id) REFERENCES webhooks (tenant_id, id) ON DELETE CASCADE
);
