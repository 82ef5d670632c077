-- The operator of the deployment: people who hold the powers that reach beyond one agency
-- (global and platform-wide kill switches, system jobs). Only the CLI
-- (`autosocial-admin operator grant`) writes this table; no console route does. Being an
-- operator is not a membership: an operator still sees and changes only the agencies they are a
-- member of.

CREATE TABLE operators (
    user_id     uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    granted_at  timestamptz NOT NULL DEFAULT now()
);
