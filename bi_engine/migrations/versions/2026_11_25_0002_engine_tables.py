"""The engine's tables, event trigger, reporting views and the bi_reporting role.

Revision ID: 0002_engine_tables
Revises: 0001_procrastinate
Create Date: 2026-11-25
"""

from __future__ import annotations

from bi_engine.migrations import sqltext

revision = "0002_engine_tables"
down_revision = "0001_procrastinate"
branch_labels = None
depends_on = None

TABLES = r"""
CREATE TABLE __SCHEMA__.analyses (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 200),
    user_email text,
    type text NOT NULL CHECK (type IN ('process_analysis', 'data_interpretation',
        'trend_analysis', 'optimization_review', 'custom_analysis', 'test')),
    agent_team text CHECK (agent_team IN ('business_analyst_team',
        'process_optimization_team', 'data_intelligence_team', 'report_generation_team')),
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    priority text NOT NULL DEFAULT 'normal' CHECK (priority IN ('high', 'normal', 'low')),
    sensitivity text NOT NULL DEFAULT 'normal' CHECK (sensitivity IN ('normal', 'confidential')),
    options jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(options) = 'object'),
    callback_url text CHECK (callback_url ~* '^https?://'),
    procrastinate_job_id bigint,
    progress smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    current_step text,
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_seq integer NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    error_code text,
    error_message text,
    abort_requested_at timestamptz,
    provider text,
    degraded boolean NOT NULL DEFAULT false,
    tokens_prompt bigint NOT NULL DEFAULT 0 CHECK (tokens_prompt >= 0),
    tokens_completion bigint NOT NULL DEFAULT 0 CHECK (tokens_completion >= 0),
    cost_eur numeric(14, 6) NOT NULL DEFAULT 0 CHECK (cost_eur >= 0),
    result jsonb,
    report_markdown text,
    created_at timestamptz NOT NULL DEFAULT now(),
    queued_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT analyses_failed_has_error CHECK (status <> 'failed' OR error_code IS NOT NULL),
    CONSTRAINT analyses_completed_has_result CHECK (status <> 'completed' OR result IS NOT NULL),
    CONSTRAINT analyses_terminal_has_finish CHECK (
        (status IN ('completed', 'failed', 'cancelled')) = (finished_at IS NOT NULL)),
    CONSTRAINT analyses_time_order CHECK (
        (started_at IS NULL OR started_at >= created_at)
        AND (finished_at IS NULL OR finished_at >= created_at))
);
CREATE INDEX analyses_user_created_idx ON __SCHEMA__.analyses (user_id, created_at DESC, id DESC);
CREATE INDEX analyses_created_idx ON __SCHEMA__.analyses (created_at DESC, id DESC);
CREATE INDEX analyses_queued_idx ON __SCHEMA__.analyses (priority, queued_at)
    WHERE status = 'queued';
CREATE INDEX analyses_running_idx ON __SCHEMA__.analyses (started_at) WHERE status = 'running';
CREATE INDEX analyses_finished_idx ON __SCHEMA__.analyses (finished_at)
    WHERE finished_at IS NOT NULL;
CREATE INDEX analyses_procrastinate_idx ON __SCHEMA__.analyses (procrastinate_job_id);

COMMENT ON TABLE __SCHEMA__.analyses IS 'One row per analysis job (CONTRACT section 10).';

CREATE TABLE __SCHEMA__.analysis_inputs (
    job_id uuid PRIMARY KEY REFERENCES __SCHEMA__.analyses (id) ON DELETE CASCADE,
    data jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object')
);
COMMENT ON TABLE __SCHEMA__.analysis_inputs IS
    'The submitted data, kept apart so listing analyses never reads large payloads.';

CREATE TABLE __SCHEMA__.analysis_events (
    id bigserial PRIMARY KEY,
    job_id uuid NOT NULL REFERENCES __SCHEMA__.analyses (id) ON DELETE CASCADE,
    seq integer NOT NULL CHECK (seq >= 1),
    kind text NOT NULL
        CHECK (kind IN ('status', 'progress', 'completed', 'failed', 'cancelled')),
    data jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object'),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT analysis_events_job_seq_key UNIQUE (job_id, seq)
);
COMMENT ON TABLE __SCHEMA__.analysis_events IS
    'Ordered event log per job; seq starts at 1 and increases by one per event.';

CREATE TABLE __SCHEMA__.audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    user_id text,
    action text NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
    analysis_type text,
    job_id uuid,
    ip text,
    result text NOT NULL CHECK (length(result) BETWEEN 1 AND 100),
    request_id text,
    details jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at_idx ON __SCHEMA__.audit_log (at);
CREATE INDEX audit_log_user_idx ON __SCHEMA__.audit_log (user_id, at);
CREATE INDEX audit_log_job_idx ON __SCHEMA__.audit_log (job_id) WHERE job_id IS NOT NULL;

CREATE TABLE __SCHEMA__.templates (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id text NOT NULL,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '',
    analysis_type text NOT NULL CHECK (analysis_type IN ('process_analysis',
        'data_interpretation', 'trend_analysis', 'optimization_review', 'custom_analysis')),
    question text,
    config jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(config) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT templates_owner_name_key UNIQUE (owner_id, name)
);

CREATE TABLE __SCHEMA__.idempotency_keys (
    user_id text NOT NULL,
    key text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    job_id uuid NOT NULL REFERENCES __SCHEMA__.analyses (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

CREATE TABLE __SCHEMA__.webhook_deliveries (
    id bigserial PRIMARY KEY,
    job_id uuid NOT NULL REFERENCES __SCHEMA__.analyses (id) ON DELETE CASCADE,
    url text NOT NULL CHECK (url ~* '^https?://'),
    event text NOT NULL CHECK (event IN ('completed', 'failed', 'cancelled')),
    attempt integer NOT NULL CHECK (attempt >= 1),
    status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'dead_letter')),
    http_status integer CHECK (http_status BETWEEN 100 AND 599),
    error text,
    duration_ms double precision CHECK (duration_ms >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz
);
CREATE INDEX webhook_deliveries_job_idx ON __SCHEMA__.webhook_deliveries (job_id, attempt);

CREATE TABLE __SCHEMA__.rate_limit_hits (
    id bigserial PRIMARY KEY,
    user_id text NOT NULL,
    bucket text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX rate_limit_hits_lookup_idx ON __SCHEMA__.rate_limit_hits (user_id, bucket, at);

CREATE TABLE __SCHEMA__.llm_calls (
    id bigserial PRIMARY KEY,
    job_id uuid REFERENCES __SCHEMA__.analyses (id) ON DELETE SET NULL,
    provider text NOT NULL,
    model text NOT NULL DEFAULT '',
    outcome text NOT NULL
        CHECK (outcome IN ('success', 'error', 'timeout', 'rate_limited', 'skipped')),
    prompt_tokens bigint NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens bigint NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    cost_eur numeric(14, 6) NOT NULL DEFAULT 0 CHECK (cost_eur >= 0),
    duration_ms double precision CHECK (duration_ms >= 0),
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX llm_calls_at_idx ON __SCHEMA__.llm_calls (at);
CREATE INDEX llm_calls_job_idx ON __SCHEMA__.llm_calls (job_id);

CREATE TABLE __SCHEMA__.agent_tasks (
    id bigserial PRIMARY KEY,
    job_id uuid NOT NULL REFERENCES __SCHEMA__.analyses (id) ON DELETE CASCADE,
    attempt integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    agent text NOT NULL,
    task text NOT NULL,
    status text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    output jsonb,
    prompt_tokens bigint NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens bigint NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    CONSTRAINT agent_tasks_time_order CHECK (finished_at IS NULL OR finished_at >= started_at)
);
CREATE INDEX agent_tasks_job_idx ON __SCHEMA__.agent_tasks (job_id, task);
"""

FUNCTIONS = r"""
-- Append events to a job's log with contiguous seq numbers (one statement, one NOTIFY).
CREATE FUNCTION __SCHEMA__.append_events(p_job uuid, p_events jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer := jsonb_array_length(p_events);
    last integer;
BEGIN
    IF n = 0 THEN
        SELECT last_seq INTO last FROM __SCHEMA__.analyses WHERE id = p_job;
        RETURN last;
    END IF;
    UPDATE __SCHEMA__.analyses SET last_seq = last_seq + n, updated_at = now()
        WHERE id = p_job RETURNING last_seq INTO last;
    IF last IS NULL THEN
        RAISE EXCEPTION 'analysis % does not exist', p_job USING ERRCODE = 'foreign_key_violation';
    END IF;
    INSERT INTO __SCHEMA__.analysis_events (job_id, seq, kind, data)
    SELECT p_job, last - n + e.ordinality::integer,
           e.value ->> 'kind', COALESCE(e.value -> 'data', '{}'::jsonb)
    FROM jsonb_array_elements(p_events) WITH ORDINALITY AS e;
    RETURN last;
END $$;

-- One NOTIFY per INSERT statement, carrying the new events themselves when they fit
-- (listeners then need no query), else references that listeners read back.
CREATE FUNCTION __SCHEMA__.notify_analysis_events() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    payload text;
BEGIN
    SELECT json_build_object('v', 1, 'events', json_agg(json_build_object(
               'job_id', n.job_id, 'seq', n.seq, 'kind', n.kind, 'data', n.data,
               'user_id', a.user_id, 'at', n.created_at) ORDER BY n.job_id, n.seq))::text
      INTO payload
      FROM new_rows n JOIN __SCHEMA__.analyses a ON a.id = n.job_id;
    IF payload IS NULL THEN
        RETURN NULL;
    END IF;
    IF octet_length(payload) > 7900 THEN
        SELECT json_build_object('v', 1, 'refs', json_agg(json_build_object(
                   'job_id', r.job_id, 'user_id', r.user_id,
                   'first_seq', r.first_seq, 'last_seq', r.last_seq)))::text
          INTO payload
          FROM (SELECT n.job_id, a.user_id, min(n.seq) AS first_seq, max(n.seq) AS last_seq
                  FROM new_rows n JOIN __SCHEMA__.analyses a ON a.id = n.job_id
                 GROUP BY n.job_id, a.user_id) r;
    END IF;
    PERFORM pg_notify('__SCHEMA___events', payload);
    RETURN NULL;
END $$;

CREATE TRIGGER analysis_events_notify
    AFTER INSERT ON __SCHEMA__.analysis_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION __SCHEMA__.notify_analysis_events();
"""

VIEWS = r"""
CREATE VIEW __SCHEMA__.report_analyses AS
SELECT a.id AS job_id, a.type, a.status, a.priority, a.sensitivity, a.user_id, a.attempts,
       a.error_code, a.provider, a.degraded, a.tokens_prompt, a.tokens_completion, a.cost_eur,
       a.created_at, a.started_at, a.finished_at,
       EXTRACT(EPOCH FROM (a.started_at - a.created_at))::double precision AS wait_seconds,
       EXTRACT(EPOCH FROM (a.finished_at - a.started_at))::double precision AS run_seconds,
       EXTRACT(EPOCH FROM (a.finished_at - a.created_at))::double precision AS total_seconds
  FROM __SCHEMA__.analyses a;

CREATE VIEW __SCHEMA__.report_daily AS
SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, r.type,
       count(*) AS submitted,
       count(*) FILTER (WHERE r.status = 'completed') AS completed,
       count(*) FILTER (WHERE r.status = 'failed') AS failed,
       count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
       round(count(*) FILTER (WHERE r.status = 'completed')::numeric
             / NULLIF(count(*) FILTER (WHERE r.status IN ('completed', 'failed')), 0), 4)
           AS success_rate,
       avg(r.run_seconds) FILTER (WHERE r.status = 'completed') AS avg_run_seconds,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY r.run_seconds)
           FILTER (WHERE r.status = 'completed') AS p95_run_seconds
  FROM __SCHEMA__.report_analyses r
 GROUP BY 1, 2;

CREATE VIEW __SCHEMA__.report_agents AS
SELECT t.agent,
       count(*) AS tasks,
       count(DISTINCT t.job_id) AS analyses,
       count(*) FILTER (WHERE t.status = 'completed') AS completed,
       count(*) FILTER (WHERE t.status = 'failed') AS failed,
       avg(EXTRACT(EPOCH FROM (t.finished_at - t.started_at)))::double precision
           AS avg_seconds,
       sum(t.prompt_tokens) AS prompt_tokens,
       sum(t.completion_tokens) AS completion_tokens
  FROM __SCHEMA__.agent_tasks t
 GROUP BY t.agent;

CREATE VIEW __SCHEMA__.report_llm_usage AS
SELECT (c.at AT TIME ZONE 'UTC')::date AS day, c.provider, c.model,
       count(*) AS requests,
       count(*) FILTER (WHERE c.outcome = 'success') AS succeeded,
       count(*) FILTER (WHERE c.outcome <> 'success') AS failed,
       sum(c.prompt_tokens) AS prompt_tokens,
       sum(c.completion_tokens) AS completion_tokens,
       sum(c.cost_eur) AS cost_eur
  FROM __SCHEMA__.llm_calls c
 GROUP BY 1, 2, 3;
"""

REPORTING_ROLE = r"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bi_reporting') THEN
        BEGIN
            CREATE ROLE bi_reporting NOLOGIN;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'bi_reporting role not created: the migrating user may not create '
                'roles. Ask a superuser to run: CREATE ROLE bi_reporting NOLOGIN; then '
                'run bi-engine migrate again or GRANT SELECT on the report_* views.';
            RETURN;
        END;
    END IF;
    EXECUTE 'GRANT USAGE ON SCHEMA __SCHEMA__ TO bi_reporting';
    EXECUTE 'GRANT SELECT ON __SCHEMA__.report_analyses, __SCHEMA__.report_daily, '
            '__SCHEMA__.report_agents, __SCHEMA__.report_llm_usage TO bi_reporting';
END $$;
"""

DROP = r"""
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bi_reporting') THEN
        EXECUTE 'REVOKE ALL ON ALL TABLES IN SCHEMA __SCHEMA__ FROM bi_reporting';
        EXECUTE 'REVOKE ALL ON SCHEMA __SCHEMA__ FROM bi_reporting';
    END IF;
END $$;
DROP VIEW IF EXISTS __SCHEMA__.report_llm_usage, __SCHEMA__.report_agents,
    __SCHEMA__.report_daily, __SCHEMA__.report_analyses;
DROP TABLE IF EXISTS __SCHEMA__.agent_tasks, __SCHEMA__.llm_calls, __SCHEMA__.rate_limit_hits,
    __SCHEMA__.webhook_deliveries, __SCHEMA__.idempotency_keys, __SCHEMA__.templates,
    __SCHEMA__.audit_log, __SCHEMA__.analysis_events, __SCHEMA__.analysis_inputs,
    __SCHEMA__.analyses;
DROP FUNCTION IF EXISTS __SCHEMA__.notify_analysis_events();
DROP FUNCTION IF EXISTS __SCHEMA__.append_events(uuid, jsonb);
"""


def upgrade() -> None:
    sqltext.execute(TABLES)
    sqltext.execute(FUNCTIONS)
    sqltext.execute(VIEWS)
    sqltext.execute(REPORTING_ROLE)


def downgrade() -> None:
    sqltext.execute(DROP)
