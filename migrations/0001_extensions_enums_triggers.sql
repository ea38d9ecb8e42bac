-- Foundations shared by every later migration: extensions, the domain enums
-- (domain.md §1) and the trigger functions more than one table uses.

-- Geography columns, GiST indexes and ST_* checks need PostGIS. gen_random_uuid()
-- is built into PostgreSQL 13+, so pgcrypto is not required.
CREATE EXTENSION IF NOT EXISTS postgis;

-- Labels are part of the client contract (JSON values equal the stored label),
-- so they must match domain.md §1 exactly and never be translated.
CREATE TYPE estado_tarea AS ENUM ('programada', 'en_curso', 'pausada', 'finalizada', 'cancelada');
CREATE TYPE tipo_tarea AS ENUM (
    'patrullaje', 'investigacion', 'vigilancia', 'intervencion',
    'administrativa', 'entrenamiento', 'emergencia'
);
CREATE TYPE estado_disponibilidad AS ENUM ('disponible', 'en_tarea', 'fuera_servicio', 'no_disponible');
CREATE TYPE respuesta_asignacion AS ENUM ('pendiente', 'aceptada', 'rechazada');
CREATE TYPE audit_severity AS ENUM ('low', 'medium', 'high', 'critical');
CREATE TYPE job_status AS ENUM ('queued', 'running', 'succeeded', 'failed', 'dead', 'cancelled');
CREATE TYPE notification_status AS ENUM (
    'pending', 'sending', 'sent', 'acknowledged', 'failed', 'undeliverable', 'expired'
);

-- One function for every mutable table, so no write path (API job, bot, seed,
-- a hand-run fix) can forget to bump updated_at.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
