-- Signed outbound webhooks (Standard Webhooks): an agency's endpoints, their signing secrets
-- (encrypted by the vault), the events emitted through a transactional outbox, one delivery per
-- event and subscribed endpoint, and every attempt of a delivery.

-- An agency's endpoints. `disabled_at` is set by a person or by the system when the endpoint
-- kept failing (the reason says which); `failing_since` is the first failed attempt after the
-- last success, cleared by any success.
CREATE TABLE webhook_endpoints (
    id              uuid PRIMARY KEY,
    agency_id       uuid NOT NULL REFERENCES agencies (id) ON DELETE CASCADE,
    url             text NOT NULL CHECK (length(url) BETWEEN 8 AND 2000),
    description     text NOT NULL DEFAULT '' CHECK (length(description) <= 300),
    event_types     text[] NOT NULL CHECK (cardinality(event_types) BETWEEN 1 AND 64),
    disabled_at     timestamptz,
    disabled_reason text CHECK (length(disabled_reason) <= 2000),
    failing_since   timestamptz,
    created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((disabled_at IS NULL) = (disabled_reason IS NULL)),
    CONSTRAINT webhook_endpoints_id_agency_key UNIQUE (id, agency_id)
);
-- the settings page and the API list an agency's endpoints newest first; every lifecycle change
-- looks up the agency's live endpoints with this one index probe (empty for most agencies)
CREATE INDEX webhook_endpoints_agency_idx ON webhook_endpoints (agency_id, created_at DESC, id DESC);

-- Signing secrets (`whsec_` + base64 of 32 random bytes), encrypted with the vault (AAD: this
-- table, `secret_ct`, the agency, the row id). During a rotation the old secret stays with
-- `expires_at` 24 hours ahead and deliveries are signed with both.
CREATE TABLE webhook_secrets (
    id          uuid PRIMARY KEY,
    agency_id   uuid NOT NULL,
    endpoint_id uuid NOT NULL,
    secret_ct   bytea NOT NULL,
    key_id      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    FOREIGN KEY (endpoint_id, agency_id) REFERENCES webhook_endpoints (id, agency_id) ON DELETE CASCADE
);
CREATE INDEX webhook_secrets_endpoint_idx ON webhook_secrets (endpoint_id);

-- Events, written in the transaction of the change they describe (the outbox) and only when
-- some endpoint of the agency wants them. The id is the `webhook-id` every delivery carries.
CREATE TABLE webhook_events (
    id          uuid PRIMARY KEY,
    agency_id   uuid NOT NULL REFERENCES agencies (id) ON DELETE CASCADE,
    event_type  text NOT NULL CHECK (event_type ~ '^[a-z_]+\.[a-z_]+$'),
    data        jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- pruning old events (their deliveries and attempts go with them)
CREATE INDEX webhook_events_created_idx ON webhook_events (created_at);

-- One event to one endpoint, sent by a `webhook` job (unique key `webhook:<delivery id>`).
CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY,
    agency_id       uuid NOT NULL,
    endpoint_id     uuid NOT NULL,
    event_id        uuid NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_status     smallint,
    last_error      text CHECK (length(last_error) <= 2000),
    last_attempt_at timestamptz,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (endpoint_id, agency_id) REFERENCES webhook_endpoints (id, agency_id) ON DELETE CASCADE,
    CHECK ((state = 'delivered') = (delivered_at IS NOT NULL))
);
-- an endpoint's delivery log, newest first
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);

-- Every attempt: its answer's status and the first KiB of its body, or the error.
CREATE TABLE webhook_attempts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id   uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    agency_id     uuid NOT NULL,
    attempt       integer NOT NULL CHECK (attempt >= 1),
    attempted_at  timestamptz NOT NULL DEFAULT now(),
    status_code   smallint,
    duration_ms   integer NOT NULL CHECK (duration_ms >= 0),
    error         text CHECK (length(error) <= 1000),
    response_excerpt text CHECK (octet_length(response_excerpt) <= 1024)
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, attempt);
