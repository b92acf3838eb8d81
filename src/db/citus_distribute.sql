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
    keys_off text[] := '{}';
    keys_back text[] := '{}';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION 'this database has no citus extension: run CREATE EXTENSION citus first';
    END IF;
    -- A shard's statement is planned on its worker, with the worker's settings: without
    -- this, the plan settings a transaction makes with SET LOCAL (hashes instead of
    -- nested loops where statistics may lag, memory for a large audience's hashes) stay
    -- on the coordinator, and the statements they guard are planned as if unguarded.
    -- With it, the SET LOCALs of a transaction go with it to the workers. New sessions
    -- take it: restart the replicas after running this.
    EXECUTE format('ALTER DATABASE %I SET citus.propagate_set_commands = %L',
                   current_database(), 'local');

    -- One transaction that distributes tables and then changes a reference table (its
    -- foreign keys back) must do all of it over one connection per node.
    PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    CREATE TEMP TABLE unplaced ON COMMIT DROP AS
    -- By name: a table Citus turns back into a plain one gets a new oid.
    SELECT c.oid::regclass::text AS relation,
           c.relname IN ('tenants', 'api_keys') AS reference
    FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace
      AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND (c.relname IN ('tenants', 'api_keys')
           OR EXISTS (SELECT 1 FROM pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped))
      -- Placed: distributed, or a reference table. A table a later migration made with a
      -- foreign key to `tenants` became a coordinator-local one of Citus's own (it
      -- shows in pg_dist_partition, but is neither): not placed.
      AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p
                      WHERE p.logicalrelid = c.oid AND (p.partmethod = 'h' OR p.repmodel = 't'))
      -- The coordinator holds shards of the reference tables itself (`api_keys_102008`):
      -- they are placed already, whatever their columns say.
      AND NOT pg_catalog.relation_is_a_known_shard(c.oid);
    IF NOT EXISTS (SELECT 1 FROM unplaced) THEN
        RAISE NOTICE 'every table is already placed';
        RETURN;
    END IF;

    -- The keys of the tables themselves, never of shards (the coordinator holds some),
    -- all listed before any is taken off: taking one off can change what Citus counts
    -- as a shard.
    FOR key IN
        SELECT conrelid::regclass AS relation, conname, pg_get_constraintdef(oid) AS definition
        FROM pg_constraint
        WHERE contype = 'f' AND connamespace = 'public'::regnamespace AND conparentid = 0
          AND (conrelid::regclass::text IN (SELECT relation FROM unplaced)
               OR conrelid IN (SELECT logicalrelid FROM pg_dist_partition))
    LOOP
        keys_off := keys_off || format('ALTER TABLE %s DROP CONSTRAINT %I',
                                       key.relation, key.conname);
        keys_back := keys_back || format('ALTER TABLE %s ADD CONSTRAINT %I %s',
                                         key.relation, key.conname, key.definition);
    END LOOP;
    FOREACH statement IN ARRAY keys_off LOOP
        EXECUTE statement;
    END LOOP;

    FOR target IN SELECT relation FROM unplaced WHERE reference ORDER BY relation LOOP
        PERFORM create_reference_table(target.relation::regclass);
    END LOOP;
    IF EXISTS (SELECT 1 FROM unplaced WHERE relation = 'contacts') THEN
        PERFORM create_distributed_table('contacts', 'tenant_id');
    END IF;
    FOR target IN
        SELECT relation FROM unplaced
        WHERE NOT reference AND relation <> 'contacts' ORDER BY relation
    LOOP
        PERFORM create_distributed_table(target.relation::regclass, 'tenant_id',
                                         colocate_with => 'contacts');
    END LOOP;

    FOREACH statement IN ARRAY keys_back LOOP
        EXECUTE statement;
    END LOOP;
END
$$;
