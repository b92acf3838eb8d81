-- How often each tenant's attribute definitions changed: bumped in the transaction of
-- every definition made or deleted, so a statement that reads the version with other
-- rows knows whether definitions cached at that version are still the tenant's. (A
-- segment list then summarises its filters without reading the definitions again.)
-- A tenant with no row has version 0.
CREATE TABLE attribute_versions (
    tenant_id BIGINT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    version   BIGINT NOT NULL
);
