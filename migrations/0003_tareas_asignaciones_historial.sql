-- Tasks, their assignment set and their state history (domain.md §2.1, §2.3, §3).

CREATE TABLE tareas (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid                  uuid NOT NULL DEFAULT gen_random_uuid(),
    codigo                varchar(20) NOT NULL,
    titulo                varchar(200) NOT NULL,
    descripcion           text,
    tipo                  tipo_tarea NOT NULL,
    prioridad             smallint NOT NULL DEFAULT 2,
    estado                estado_tarea NOT NULL DEFAULT 'programada',
    origen                varchar(12) NOT NULL DEFAULT 'api',
    inicio_programado     timestamptz NOT NULL,
    fin_programado        timestamptz,
    inicio_real           timestamptz,
    fin_real              timestamptz,
    pausado_en            timestamptz,
    -- Sum of closed pauses only; the open one is pausado_en, so a resume can
    -- close it without re-reading the history.
    tiempo_pausado        interval NOT NULL DEFAULT '0',
    -- Stored so reports can aggregate durations without recomputing them. Every
    -- operator involved (timestamptz - timestamptz, interval - interval,
    -- extract(epoch FROM interval)) is IMMUTABLE, which a generated column
    -- requires. NULL unless fin_real is set, i.e. unless finalizada.
    duracion_real_horas   numeric(10, 2) GENERATED ALWAYS AS (
        round(extract(epoch FROM fin_real - inicio_real - tiempo_pausado) / 3600, 2)
    ) STORED,
    delegado_usuario_id   bigint NOT NULL REFERENCES usuarios (id) ON DELETE RESTRICT,
    -- Taken from the token by the job, never from the body.
    creado_por_usuario_id bigint NOT NULL REFERENCES usuarios (id) ON DELETE RESTRICT,
    ubicacion             geography(Point, 4326),
    ubicacion_descripcion varchar(200),
    -- A redelivered create job hits this unique key instead of making a second tarea.
    creado_por_job_id     uuid,
    notas                 jsonb NOT NULL DEFAULT '{}',
    extra_data            jsonb NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    deleted_at            timestamptz,
    CONSTRAINT uq_tareas_uuid UNIQUE (uuid),
    CONSTRAINT uq_tareas_codigo UNIQUE (codigo),
    CONSTRAINT uq_tareas_creado_por_job_id UNIQUE (creado_por_job_id),
    CONSTRAINT chk_codigo CHECK (codigo ~ '^[A-Z0-9_-]{3,20}$'),
    CONSTRAINT chk_titulo CHECK (length(btrim(titulo)) >= 5),
    CONSTRAINT chk_descripcion CHECK (descripcion IS NULL OR length(descripcion) <= 1000),
    CONSTRAINT chk_prioridad CHECK (prioridad BETWEEN 1 AND 5),
    CONSTRAINT chk_origen CHECK (origen IN ('api', 'telegram', 'emergencia', 'seed')),
    CONSTRAINT chk_tiempo_pausado CHECK (tiempo_pausado >= interval '0'),
    CONSTRAINT chk_tareas_fechas CHECK (fin_programado IS NULL OR fin_programado > inicio_programado),
    CONSTRAINT chk_tareas_fechas_reales CHECK (
        (inicio_real IS NULL AND fin_real IS NULL)
        OR (inicio_real IS NOT NULL AND (fin_real IS NULL OR fin_real >= inicio_real))
    ),
    -- The state machine (§3) is enforced by the jobs; this is the backstop that
    -- keeps a buggy or hand-written UPDATE from storing an impossible row.
    CONSTRAINT chk_tareas_estado_fechas CHECK (
        (estado <> 'en_curso' OR (inicio_real IS NOT NULL AND pausado_en IS NULL))
        AND (estado <> 'pausada' OR (inicio_real IS NOT NULL AND pausado_en IS NOT NULL))
        AND (estado <> 'finalizada' OR fin_real IS NOT NULL)
        AND (estado <> 'programada' OR inicio_real IS NULL)
    ),
    CONSTRAINT chk_ubicacion_rango CHECK (
        ubicacion IS NULL
        OR (ST_Y(ubicacion::geometry) BETWEEN -90 AND 90
            AND ST_X(ubicacion::geometry) BETWEEN -180 AND 180)
    )
);

-- Map view: live tareas with a location (ST_DWithin on geography).
CREATE INDEX ix_tareas_ubicacion ON tareas USING gist (ubicacion) WHERE deleted_at IS NULL;
-- "My tasks" lists and the per-user stats.
CREATE INDEX ix_tareas_delegado_estado_created ON tareas (delegado_usuario_id, estado, created_at);
-- The default list order (created_at DESC, id DESC) as a keyset.
CREATE INDEX ix_tareas_created_id ON tareas (created_at DESC, id DESC) WHERE deleted_at IS NULL;
-- Dashboards and timers only ever look at active tareas, a small share of the table.
CREATE INDEX ix_tareas_estado_activa ON tareas (estado)
    WHERE estado IN ('programada', 'en_curso', 'pausada') AND deleted_at IS NULL;

CREATE TRIGGER trg_tareas_updated_at BEFORE UPDATE ON tareas
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Emergency codigos are EMG-YYMMDD-NNNNNNN (§4 step 3). A sequence rather than
-- max()+1 so concurrent dispatches never collide or serialise on each other;
-- gaps after a rollback are harmless. The 7-digit field wraps after 9,999,999.
CREATE SEQUENCE emergency_codigo_seq AS bigint MINVALUE 1 MAXVALUE 9999999 CYCLE;

-- The only record of who works on a tarea: there is deliberately no array
-- column anywhere, so the assignment set cannot be stored twice.
CREATE TABLE tarea_efectivos (
    tarea_id                bigint NOT NULL REFERENCES tareas (id) ON DELETE RESTRICT,
    efectivo_id             bigint NOT NULL REFERENCES efectivos (id) ON DELETE RESTRICT,
    -- NULL = system dispatch.
    asignado_por_usuario_id bigint REFERENCES usuarios (id) ON DELETE RESTRICT,
    asignado_en             timestamptz NOT NULL DEFAULT now(),
    respuesta               respuesta_asignacion NOT NULL DEFAULT 'pendiente',
    respondida_en           timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tarea_id, efectivo_id)
);

-- "Which tareas hold this unit" (release rule, own-task checks).
CREATE INDEX ix_tarea_efectivos_efectivo ON tarea_efectivos (efectivo_id);

CREATE TRIGGER trg_tarea_efectivos_updated_at BEFORE UPDATE ON tarea_efectivos
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Append-only by convention (no updated_at): one row per estado change,
-- creation included, written in the transaction that made the change.
CREATE TABLE historial_estados (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tarea_id        bigint NOT NULL REFERENCES tareas (id) ON DELETE RESTRICT,
    -- NULL only on the creation row.
    estado_anterior estado_tarea,
    estado_nuevo    estado_tarea NOT NULL,
    -- NULL = system.
    usuario_id      bigint REFERENCES usuarios (id) ON DELETE RESTRICT,
    motivo          text,
    job_id          uuid,
    extra_data      jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chk_motivo CHECK (motivo IS NULL OR length(motivo) <= 500)
);

CREATE INDEX ix_historial_estados_tarea_created ON historial_estados (tarea_id, created_at);
