-- Distributes a migrated database on Citus: run on the coordinator by
-- `segments distribute`, after the migrations. Safe to repeat: tables already
-- distributed are left alone, so after a migration that adds a table, run it again.
--
-- The rule: `tenants` and `api_keys` (small, read before the tenant is known) are
-- reference tables, copied to every node; every other table with a `tenant_id` column is
-- distributed by it, co-located with `contacts`, so each tenant's rows live on one node
-- and every statement that names its tenant runs on one shard. Partitioned tables
-- (`send_recipients`) take their partitions with them, and partitions made later on the
-- coordinator follow. The migrations' own bookkeeping table stays on the coordinator.
--
-- The order matters: a reference table made while plain tables still point at it turns
-- them into coordinator-local tables, which then cannot be distributed. So the foreign
-- keys are taken off first and put back, as they were, once every table is placed.
DO $$
DECLARE
    key record;
    target record;
    statement text;
    keys_back text[] := '{}';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION 'this database has no citus extension: run CREATE EXTENSION citus first';
    END IF;
    -- One transaction that distributes tables and then changes a reference table (its
    -- foreign keys back) must do all of it over one connection per node.
    PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    CREATE TEMP TABLE unplaced ON COMMIT DROP AS
    SELECT c.oid::regclass AS relation,
           c.relname IN ('tenants', 'api_keys') AS reference
    FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace
      AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND (c.relname IN ('tenants', 'api_keys')
           OR EXISTS (SELECT 1 FROM pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped))
      AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.oid);
    IF NOT EXISTS (SELECT 1 FROM unplaced) THEN
        RAISE NOTICE 'every table is already placed';
        RETURN;
    END IF;

    FOR key IN
        SELECT conrelid::regclass AS relation, conname, pg_get_constraintdef(oid) AS definition
        FROM pg_constraint
        WHERE contype = 'f' AND connamespace = 'public'::regnamespace AND conparentid = 0
    LOOP
        keys_back := keys_back || format('ALTER TABLE %s ADD CONSTRAINT %I %s',
                                         key.relation, key.conname, key.definition);
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', key.relation, key.conname);
    END LOOP;

    FOR target IN SELECT relation FROM unplaced WHERE reference ORDER BY relation::text LOOP
        PERFORM create_reference_table(target.relation);
    END LOOP;
    IF EXISTS (SELECT 1 FROM unplaced WHERE relation = 'contacts'::regclass) THEN
        PERFORM create_distributed_table('contacts', 'tenant_id');
    END IF;
    FOR target IN
        SELECT relation FROM unplaced
        WHERE NOT reference AND relation <> 'contacts'::regclass ORDER BY relation::text
    LOOP
        PERFORM create_distributed_table(target.relation, 'tenant_id', colocate_with => 'contacts');
    END LOOP;

    FOREACH statement IN ARRAY keys_back LOOP
        EXECUTE statement;
    END LOOP;
END
$$;
