-- A platform refused an OAuth app's own credentials (invalid_client / unauthorized_client) when
-- an agency's account was refreshed or connected: retrying cannot help and no account is to
-- blame, so the refusal is kept here and shown on the settings page and on every account of the
-- agency on that platform, until the app is changed (saved or removed) or works again.
CREATE TABLE platform_app_refusals (
    agency_id   uuid NOT NULL REFERENCES agencies (id) ON DELETE CASCADE,
    platform    text NOT NULL CHECK (platform IN ('facebook', 'instagram', 'tiktok', 'linkedin', 'x', 'sandbox')),
    -- the agency's own app (Settings) or the deployment's (environment)
    own_app     boolean NOT NULL,
    client_id   text NOT NULL CHECK (length(client_id) BETWEEN 1 AND 500),
    message     text NOT NULL CHECK (length(message) <= 2000),
    refused_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agency_id, platform)
);
