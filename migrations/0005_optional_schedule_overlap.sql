-- Optional rule (domain.md §2.3): no two active scheduled tareas of one delegado
-- may overlap. Off by default because agencies that double-book on purpose
-- would see their writes fail with 409 schedule_overlap.
--
-- To enable it, set the flag for the session that runs the migrations, before
-- this migration is first applied, e.g.
--     ALTER DATABASE gad SET gad.enable_schedule_overlap = 'on';
-- (new sessions then see it) or PGOPTIONS='-c gad.enable_schedule_overlap=on'.
-- The flag is read only when this migration runs; to turn the rule on for a
-- database that already applied it, add a new migration with the same block.
DO $$
BEGIN
    IF current_setting('gad.enable_schedule_overlap', true) = 'on' THEN
        -- btree_gist provides the GiST opclass for the bigint equality part.
        CREATE EXTENSION IF NOT EXISTS btree_gist;
        -- Emergencies have no fin_programado, so they are never blocked.
        ALTER TABLE tareas ADD CONSTRAINT ex_tareas_solape EXCLUDE USING gist (
            delegado_usuario_id WITH =,
            tstzrange(inicio_programado, fin_programado) WITH &&
        ) WHERE (
            estado IN ('programada', 'en_curso', 'pausada')
            AND deleted_at IS NULL
            AND fin_programado IS NOT NULL
        );
    END IF;
END;
$$;
