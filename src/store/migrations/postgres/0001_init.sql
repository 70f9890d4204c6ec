-- The shared store of several instances. Times are timestamptz and are written by the database's
-- own clock, never an instance's: due times, leases and the dial window are compared against it.
CREATE TABLE calls (
    id              uuid PRIMARY KEY,
    to_number       text NOT NULL,
    due_at          timestamptz NOT NULL,
    timezone        text NOT NULL,
    status          text NOT NULL,
    -- The lease's fencing token: bumped by each claim and each takeover.
    attempt         integer NOT NULL DEFAULT 0,
    lease_owner     text,
    lease_until     timestamptz,
    -- When the dial first went under the call's command id (the resend window starts here).
    dial_started_at timestamptz,
    call_control_id text,
    joke            text,
    last_error      text,
    note            text,
    idempotency_key text UNIQUE,
    request_hash    text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX calls_scheduled_due ON calls (due_at) WHERE status = 'scheduled';
CREATE INDEX calls_dialing_lease ON calls (lease_until) WHERE status = 'dialing';
CREATE INDEX calls_in_progress ON calls (status) WHERE status IN ('dialing', 'ringing', 'answered', 'speaking');
CREATE INDEX calls_created ON calls (created_at DESC);
CREATE INDEX calls_status_created ON calls (status, created_at DESC);
CREATE INDEX calls_call_control_id ON calls (call_control_id);
CREATE INDEX calls_to_created ON calls (to_number, created_at);
CREATE INDEX calls_to_joke ON calls (to_number, updated_at DESC) WHERE joke IS NOT NULL;
CREATE INDEX calls_updated ON calls (updated_at);

CREATE TABLE call_events (
    seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id uuid NOT NULL REFERENCES calls (id),
    at      timestamptz NOT NULL,
    kind    text NOT NULL,
    detail  text
);
CREATE INDEX call_events_call ON call_events (call_id, seq);

-- Every verified webhook, kept raw and unique by Telnyx's event id whichever instance got it;
-- `call_key` groups the events of one call so they are applied one at a time in `seq` order.
CREATE TABLE inbox (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     text NOT NULL UNIQUE,
    call_key     text NOT NULL,
    event_type   text NOT NULL,
    body         bytea NOT NULL,
    received_at  timestamptz NOT NULL,
    processed_at timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX inbox_pending ON inbox (call_key, seq) WHERE processed_at IS NULL;

-- Every dial sent by any instance (first dials and resends): claims count the last window of it
-- to keep the whole cluster within the dial rate.
CREATE TABLE dial_log (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at  timestamptz NOT NULL
);
CREATE INDEX dial_log_at ON dial_log (at);
