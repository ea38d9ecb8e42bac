-- Records around the business tables: the audit trail, durable jobs, Telegram
-- link codes and the two outboxes (domain.md §2.1).

CREATE TABLE audit_log (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id          uuid NOT NULL DEFAULT gen_random_uuid(),
    occurred_at       timestamptz NOT NULL DEFAULT now(),
    actor_usuario_id  bigint REFERENCES usuarios (id) ON DELETE RESTRICT,
    actor_telegram_id bigint,
    action            varchar(48) NOT NULL,
    severity          audit_severity NOT NULL DEFAULT 'low',
    resource_type     varchar(32),
    resource_id       varchar(64),
    before            jsonb,
    after             jsonb,
    request_id        varchar(64),
    job_id            uuid,
    ip                inet,
    user_agent        text,
    success           boolean NOT NULL DEFAULT true,
    error_code        varchar(64),
    -- Filled from severity on insert when the writer leaves it NULL, so the
    -- retention policy lives in one place.
    retention_until   date NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_audit_log_event_id UNIQUE (event_id),
    -- Actions are lower-case snake_case identifiers (§2.1); this keeps free
    -- text and mixed case out without a migration for every new action.
    CONSTRAINT chk_audit_action CHECK (action ~ '^[a-z][a-z0-9_]*$')
);

CREATE INDEX ix_audit_log_occurred ON audit_log (occurred_at);
CREATE INDEX ix_audit_log_actor_occurred ON audit_log (actor_usuario_id, occurred_at);
CREATE INDEX ix_audit_log_resource ON audit_log (resource_type, resource_id);
CREATE INDEX ix_audit_log_action_occurred ON audit_log (action, occurred_at);

CREATE FUNCTION audit_log_fill_retention() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.retention_until IS NULL THEN
        NEW.retention_until := (NEW.occurred_at AT TIME ZONE 'UTC')::date + CASE NEW.severity
            WHEN 'low' THEN 365
            WHEN 'medium' THEN 2190
            WHEN 'high' THEN 3650
            ELSE 7300
        END;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER trg_audit_log_fill_retention BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_fill_retention();

-- The application connects as a single role, so a REVOKE of UPDATE/DELETE
-- would also take them away from every other table it must write. A trigger
-- enforces append-only regardless of role: no row is ever changed, and a row
-- is removed only by the retention purge, once retention_until has passed.
CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.retention_until < current_date THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit_log is append-only: row % is retained until %', OLD.id, OLD.retention_until
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER trg_audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
-- TRUNCATE fires no row triggers, so it needs its own guard.
CREATE TRIGGER trg_audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE jobs (
    -- UUID v7, also the NATS message id, so a duplicate publish is dropped.
    job_id          uuid PRIMARY KEY,
    kind            varchar(48) NOT NULL,
    status          job_status NOT NULL DEFAULT 'queued',
    attempts        integer NOT NULL DEFAULT 0,
    max_attempts    integer NOT NULL DEFAULT 5,
    -- NULL = system.
    submitted_by    bigint REFERENCES usuarios (id) ON DELETE RESTRICT,
    request_id      varchar(64),
    -- Informational only: the 24 h idempotency bucket in NATS is the authority.
    idempotency_key varchar(128),
    payload_hash    bytea,
    payload_summary jsonb NOT NULL DEFAULT '{}',
    result          jsonb,
    error           jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chk_jobs_attempts CHECK (attempts >= 0 AND max_attempts >= 1)
);

CREATE INDEX ix_jobs_status_created ON jobs (status, created_at);
CREATE INDEX ix_jobs_submitted_by_created ON jobs (submitted_by, created_at DESC);
CREATE INDEX ix_jobs_kind_status ON jobs (kind, status);

CREATE TRIGGER trg_jobs_updated_at BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Only the SHA-256 of a link code is stored, so a database leak does not leak
-- usable codes.
CREATE TABLE telegram_links (
    code_hash           bytea PRIMARY KEY,
    usuario_id          bigint NOT NULL REFERENCES usuarios (id) ON DELETE RESTRICT,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL DEFAULT now() + interval '10 minutes',
    used_at             timestamptz,
    used_by_telegram_id bigint,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chk_telegram_links_code_hash CHECK (octet_length(code_hash) = 32)
);

CREATE INDEX ix_telegram_links_usuario ON telegram_links (usuario_id);

CREATE TRIGGER trg_telegram_links_updated_at BEFORE UPDATE ON telegram_links
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One row per recipient per channel per notification, written in the business
-- transaction and delivered afterwards (at-least-once, idempotent by id).
CREATE TABLE notifications (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id             uuid NOT NULL,
    recipient_usuario_id bigint NOT NULL REFERENCES usuarios (id) ON DELETE RESTRICT,
    tarea_id             bigint REFERENCES tareas (id) ON DELETE RESTRICT,
    channel              varchar(12) NOT NULL,
    kind                 varchar(32) NOT NULL,
    -- 0 = must act now.
    priority             smallint NOT NULL DEFAULT 1,
    payload              jsonb NOT NULL DEFAULT '{}',
    status               notification_status NOT NULL DEFAULT 'pending',
    attempts             integer NOT NULL DEFAULT 0,
    -- Defaults to now() so a fresh row is due at once.
    next_attempt_at      timestamptz DEFAULT now(),
    last_error           text,
    telegram_message_id  bigint,
    sent_at              timestamptz,
    acked_at             timestamptz,
    expires_at           timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_notifications_event_recipient_channel UNIQUE (event_id, recipient_usuario_id, channel),
    CONSTRAINT chk_notifications_channel CHECK (channel IN ('telegram', 'websocket')),
    CONSTRAINT chk_notifications_priority CHECK (priority BETWEEN 0 AND 2),
    CONSTRAINT chk_notifications_attempts CHECK (attempts >= 0)
);

-- The delivery loop polls due rows only.
CREATE INDEX ix_notifications_due ON notifications (status, next_attempt_at)
    WHERE status IN ('pending', 'failed');
CREATE INDEX ix_notifications_recipient_created ON notifications (recipient_usuario_id, created_at DESC);
-- Not in §2.2: without it every DELETE of a tarea (the seed's re-run) checks
-- this foreign key with a sequential scan per row.
CREATE INDEX ix_notifications_tarea ON notifications (tarea_id) WHERE tarea_id IS NOT NULL;

CREATE TRIGGER trg_notifications_updated_at BEFORE UPDATE ON notifications
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Events written in the business transaction and published after commit.
-- The identity id is the publish order, so events of one tarea never reorder.
CREATE TABLE outbox_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- UUID v7: the message_id clients see and deduplicate on.
    event_id     uuid NOT NULL,
    event_type   varchar(64) NOT NULL,
    topics       text[] NOT NULL DEFAULT '{}',
    payload      jsonb NOT NULL DEFAULT '{}',
    job_id       uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_outbox_events_event_id UNIQUE (event_id)
);

-- Not in §2.2: the relay reads unpublished rows in id order, which without
-- this index is a scan over a day of published rows on every poll.
CREATE INDEX ix_outbox_events_unpublished ON outbox_events (id) WHERE published_at IS NULL;

CREATE TRIGGER trg_outbox_events_updated_at BEFORE UPDATE ON outbox_events
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
