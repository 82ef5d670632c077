-- Invitations to join an agency. Joining is the invited person's choice: an owner's invitation
-- is a random 256-bit token (stored only as its SHA-256) that expires and works once; the person
-- accepts it with their password (an existing account) or by choosing one (a new account).

CREATE TABLE invitations (
    id           uuid PRIMARY KEY,
    agency_id    uuid NOT NULL REFERENCES agencies (id) ON DELETE CASCADE,
    email        citext NOT NULL CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254),
    role         text NOT NULL CHECK (role IN ('owner', 'admin', 'reviewer', 'viewer')),
    token_hash   bytea NOT NULL CHECK (length(token_hash) = 32),
    invited_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    accepted_at  timestamptz,
    accepted_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    revoked_at   timestamptz,
    CONSTRAINT invitations_token_hash_key UNIQUE (token_hash),
    CHECK (expires_at > created_at),
    CHECK (accepted_at IS NULL OR revoked_at IS NULL)
);
-- the settings page lists an agency's invitations, newest first
CREATE INDEX invitations_agency_idx ON invitations (agency_id, created_at DESC);
-- at most one open invitation per agency and address (inviting again replaces it)
CREATE UNIQUE INDEX invitations_open_key ON invitations (agency_id, email)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;
