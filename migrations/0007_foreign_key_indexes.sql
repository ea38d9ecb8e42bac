-- Indexes on referencing columns that §2.2 does not list. A foreign key is
-- checked from the referenced side whenever a parent row is removed: without
-- an index on the referencing column, each removed usuario costs a sequential
-- scan of every referencing table. The app only soft-deletes usuarios, but the
-- seed generator hard-deletes seed usuarios a previous, larger run left behind.

-- Also serves supervisors' "tareas I created" lists (/historial, §9.2).
CREATE INDEX ix_tareas_creado_por ON tareas (creado_por_usuario_id);
CREATE INDEX ix_tarea_efectivos_asignado_por ON tarea_efectivos (asignado_por_usuario_id)
    WHERE asignado_por_usuario_id IS NOT NULL;
CREATE INDEX ix_historial_estados_usuario ON historial_estados (usuario_id) WHERE usuario_id IS NOT NULL;
