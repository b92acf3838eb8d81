-- Every tenant-owned table carries tenant_id in its primary key and in every foreign key,
-- so the schema can be distributed by tenant_id (Citus) without changes.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE tenants (
    id                      BIGSERIAL PRIMARY KEY,
    name                    TEXT        NOT NULL,
    endpoint_limit          BIGINT      CHECK (endpoint_limit >= 0),
    default_region          TEXT        CHECK (default_region ~ '^[A-Z]{2}$'),
    require_privacy_consent BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Looked up by hash before the tenant is known: a reference table under Citus.
CREATE TABLE api_keys (
    id         BIGSERIAL PRIMARY KEY,
    tenant_id  BIGINT      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_hash   BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash)
);
CREATE INDEX api_keys_tenant_id_idx ON api_keys (tenant_id);

CREATE TABLE contacts (
    tenant_id       BIGINT      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              BIGSERIAL,
    external_id     TEXT,
    name            TEXT        NOT NULL,
    phone           TEXT,
    phone_e164      TEXT,
    phone_country   TEXT,
    email           TEXT,
    attributes      JSONB       NOT NULL DEFAULT '{}'::jsonb,
    tags            TEXT[]      NOT NULL DEFAULT '{}',
    opted_out       BOOLEAN     NOT NULL DEFAULT FALSE,
    privacy_consent BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT contacts_phone_e164_key UNIQUE (tenant_id, phone_e164),
    CONSTRAINT contacts_external_id_key UNIQUE (tenant_id, external_id)
);
-- Containment (@>) on attributes and tags is what dynamic filters compile to.
CREATE INDEX contacts_attributes_idx ON contacts USING GIN (attributes jsonb_path_ops);
CREATE INDEX contacts_tags_idx ON contacts USING GIN (tags);
-- Substring search over the fields a person types into a search box.
CREATE INDEX contacts_search_idx ON contacts USING GIN (
    (name || ' ' || coalesce(phone, '') || ' ' || coalesce(phone_e164, '') || ' ' ||
     coalesce(email, '') || ' ' || coalesce(external_id, '')) gin_trgm_ops
);

CREATE TABLE attribute_definitions (
    tenant_id  BIGINT      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key        TEXT        NOT NULL,
    label      TEXT        NOT NULL,
    type       TEXT        NOT NULL CHECK (type IN ('text', 'number', 'boolean', 'date')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE segments (
    tenant_id   BIGINT      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          BIGSERIAL,
    name        TEXT        NOT NULL,
    description TEXT,
    kind        TEXT        NOT NULL CHECK (kind IN ('static', 'dynamic')),
    channel     TEXT        NOT NULL CHECK (channel IN ('whatsapp', 'sms', 'email')),
    filter      JSONB,
    recipients  BIGINT      NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CHECK ((kind = 'dynamic') = (filter IS NOT NULL))
);
CREATE UNIQUE INDEX segments_name_key ON segments (tenant_id, lower(name));

-- Static membership. Dynamic segments have no rows here: their members are computed.
CREATE TABLE segment_members (
    tenant_id  BIGINT      NOT NULL,
    segment_id BIGINT      NOT NULL,
    contact_id BIGINT      NOT NULL,
    added_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, segment_id, contact_id),
    FOREIGN KEY (tenant_id, segment_id) REFERENCES segments (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX segment_members_contact_idx ON segment_members (tenant_id, contact_id);
