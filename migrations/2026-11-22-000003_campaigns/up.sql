CREATE TABLE campaigns (
    tenant_id  BIGINT      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id         BIGSERIAL,
    name       TEXT        NOT NULL,
    channel    TEXT        NOT NULL CHECK (channel IN ('whatsapp', 'sms', 'email')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

-- The segments a campaign includes and excludes; deleting a segment removes it from
-- every campaign that names it.
CREATE TABLE campaign_segments (
    tenant_id   BIGINT  NOT NULL,
    campaign_id BIGINT  NOT NULL,
    segment_id  BIGINT  NOT NULL,
    excluded    BOOLEAN NOT NULL,
    position    INT     NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, segment_id),
    FOREIGN KEY (tenant_id, campaign_id) REFERENCES campaigns (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, segment_id) REFERENCES segments (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX campaign_segments_segment_idx ON campaign_segments (tenant_id, segment_id);
