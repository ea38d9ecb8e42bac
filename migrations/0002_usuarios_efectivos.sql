-- People and field units (domain.md §2.1). Both are soft-deleted: the API never
-- removes a row, so every foreign key pointing here stays valid forever.

CREATE TABLE usuarios (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid                 uuid NOT NULL DEFAULT gen_random_uuid(),
    dni                  varchar(20) NOT NULL,
    telefono             varchar(20),
    nombre               varchar(100) NOT NULL,
    apellido             varchar(100) NOT NULL,
    email                varchar(254) NOT NULL,
    -- Written only by the link-code flow (§9.1), never from a request body.
    telegram_id          bigint,
    nivel                smallint NOT NULL DEFAULT 1,
    hashed_password      varchar(255) NOT NULL,
    verificado           boolean NOT NULL DEFAULT false,
    intentos_fallidos    integer NOT NULL DEFAULT 0,
    bloqueado_hasta      timestamptz,
    ultimo_acceso        timestamptz,
    -- Tokens issued before this instant are rejected (§6.2).
    tokens_validos_desde timestamptz NOT NULL DEFAULT now(),
    extra_data           jsonb NOT NULL DEFAULT '{}',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz,
    CONSTRAINT uq_usuarios_uuid UNIQUE (uuid),
    CONSTRAINT chk_nombre CHECK (length(btrim(nombre)) >= 2 AND length(btrim(apellido)) >= 2),
    CONSTRAINT chk_dni CHECK (length(dni) >= 5),
    CONSTRAINT chk_nivel CHECK (nivel BETWEEN 1 AND 3),
    CONSTRAINT chk_intentos_fallidos CHECK (intentos_fallidos >= 0)
);

-- Login looks the address up case-insensitively, so uniqueness must be too.
CREATE UNIQUE INDEX ux_usuarios_email_lower ON usuarios (lower(email));
CREATE UNIQUE INDEX ux_usuarios_dni ON usuarios (dni);
CREATE UNIQUE INDEX ux_usuarios_telegram_id ON usuarios (telegram_id) WHERE telegram_id IS NOT NULL;
-- Supervisor fan-out (alerts, notifications) selects live usuarios by nivel.
CREATE INDEX ix_usuarios_nivel ON usuarios (nivel) WHERE deleted_at IS NULL;

CREATE TRIGGER trg_usuarios_updated_at BEFORE UPDATE ON usuarios
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE efectivos (
    id                          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid                        uuid NOT NULL DEFAULT gen_random_uuid(),
    usuario_id                  bigint NOT NULL REFERENCES usuarios (id) ON DELETE RESTRICT,
    codigo_interno              varchar(50) NOT NULL,
    rango                       varchar(50),
    unidad                      varchar(100),
    especialidad                varchar(100),
    disponibilidad              estado_disponibilidad NOT NULL DEFAULT 'disponible',
    ultima_actualizacion_estado timestamptz NOT NULL DEFAULT now(),
    -- NULL means the position is unknown; such a unit is never dispatched.
    ubicacion                   geography(Point, 4326),
    ubicacion_actualizada_en    timestamptz,
    ubicacion_precision_m       real,
    metadata                    jsonb NOT NULL DEFAULT '{}',
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    deleted_at                  timestamptz,
    CONSTRAINT uq_efectivos_uuid UNIQUE (uuid),
    CONSTRAINT chk_codigo_interno CHECK (codigo_interno ~ '^[A-Z0-9_-]{2,50}$'),
    CONSTRAINT chk_ubicacion_rango CHECK (
        ubicacion IS NULL
        OR (ST_Y(ubicacion::geometry) BETWEEN -90 AND 90
            AND ST_X(ubicacion::geometry) BETWEEN -180 AND 180)
    ),
    CONSTRAINT chk_ubicacion_precision CHECK (ubicacion_precision_m IS NULL OR ubicacion_precision_m >= 0)
);

-- 1:1 with usuarios.
CREATE UNIQUE INDEX ux_efectivos_usuario_id ON efectivos (usuario_id);
CREATE UNIQUE INDEX ux_efectivos_codigo_interno ON efectivos (codigo_interno);
-- Map view: every live unit with a position.
CREATE INDEX ix_efectivos_ubicacion ON efectivos USING gist (ubicacion) WHERE deleted_at IS NULL;
-- Emergency dispatch KNN (§4): its WHERE clause implies this predicate, so the
-- nearest-neighbour scan never visits units that cannot be dispatched.
CREATE INDEX ix_efectivos_ubicacion_disponible ON efectivos USING gist (ubicacion)
    WHERE disponibilidad = 'disponible' AND deleted_at IS NULL;
CREATE INDEX ix_efectivos_disponibilidad ON efectivos (disponibilidad);

CREATE TRIGGER trg_efectivos_updated_at BEFORE UPDATE ON efectivos
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
