-- The public JSON API (/api/v1): keys per agency and the responses kept for Idempotency-Key.

-- An agency's API keys. The key itself (`as_live_` and 256 random bits) is shown once at
-- creation; only its SHA-256 is stored. A key has a role below owner and may be limited to
-- some of the agency's clients (`all_clients = false` and rows in api_key_clients).
CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    agency_id     uuid NOT NULL REFERENCES agencies (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    role          text NOT NULL CHECK (role IN ('admin', 'reviewer', 'viewer')),
    -- the key's first characters, shown so people can tell their keys apart
    display_prefix text NOT NULL CHECK (length(display_prefix) BETWEEN 8 AND 32),
    secret_hash   bytea NOT NULL CHECK (length(secret_hash) = 32),
    all_clients   boolean NOT NULL,
    created_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    revoked_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT api_keys_secret_hash_key UNIQUE (secret_hash),
    CONSTRAINT api_keys_id_agency_key UNIQUE (id, agency_id)
);
-- the settings page lists an agency's keys, newest first
CREATE INDEX api_keys_agency_idx ON api_keys (agency_id, created_at DESC);

-- The clients a limited key may reach (a client's removal removes it from every key, which then
-- reaches fewer clients, never more).
CREATE TABLE api_key_clients (
    key_id     uuid NOT NULL,
    client_id  uuid NOT NULL,
    agency_id  uuid NOT NULL,
    PRIMARY KEY (key_id, client_id),
    FOREIGN KEY (key_id, agency_id) REFERENCES api_keys (id, agency_id) ON DELETE CASCADE,
    FOREIGN KEY (client_id, agency_id) REFERENCES clients (id, agency_id) ON DELETE CASCADE
);
CREATE INDEX api_key_clients_client_idx ON api_key_clients (client_id);

-- Idempotency-Key (Stripe's semantics): the first response to a POST or PATCH per agency and
-- key, kept 24 hours and replayed byte for byte. `status IS NULL` while the first request is in
-- flight (its `lock_token` names the request that holds it).
CREATE TABLE api_idempotency (
    agency_id     uuid NOT NULL REFERENCES agencies (id) ON DELETE CASCADE,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 of method, path and body: the same key with another request is refused
    request_hash  bytea NOT NULL CHECK (length(request_hash) = 32),
    lock_token    uuid NOT NULL,
    api_key_id    uuid REFERENCES api_keys (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    status        smallint CHECK (status BETWEEN 100 AND 599),
    headers       jsonb CHECK (jsonb_typeof(headers) = 'array'),
    body          bytea,
    completed_at  timestamptz,
    PRIMARY KEY (agency_id, key),
    CHECK ((status IS NULL) = (completed_at IS NULL) AND (status IS NULL) = (body IS NULL)
           AND (status IS NULL) = (headers IS NULL))
);
-- pruning expired responses
CREATE INDEX api_idempotency_expires_idx ON api_idempotency (expires_at);

-- The API lists an agency's items and clients newest first with (created_at, id) cursors.
CREATE INDEX content_items_agency_created_idx ON content_items (agency_id, created_at DESC, id DESC);
CREATE INDEX clients_agency_created_idx ON clients (agency_id, created_at DESC, id DESC);
