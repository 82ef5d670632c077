-- Planning and generation of content items.

-- The rule's nominal slot an item was planned for. `slot_at` may be later when the planner had to
-- move the post to keep an account's minimum gap; re-planning matches rules against this column,
-- so a moved item is never planned a second time at its nominal instant.
ALTER TABLE content_items
    ADD COLUMN planned_for timestamptz,
    -- why the last generation attempt failed (the item stays `planned`); cleared on success
    ADD COLUMN generation_error text CHECK (length(generation_error) <= 2000);
CREATE UNIQUE INDEX content_items_rule_planned_key ON content_items (rule_id, planned_for)
    WHERE rule_id IS NOT NULL AND planned_for IS NOT NULL;

-- AI tokens spent per agency and UTC day, counted from the providers' `usage.total_tokens`;
-- budgets (agency_settings) are checked against it before every request.
CREATE TABLE ai_usage (
    agency_id          uuid NOT NULL REFERENCES agencies (id) ON DELETE CASCADE,
    day                date NOT NULL,
    requests           bigint NOT NULL DEFAULT 0 CHECK (requests >= 0),
    prompt_tokens      bigint NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens  bigint NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    total_tokens       bigint NOT NULL DEFAULT 0 CHECK (total_tokens >= 0),
    PRIMARY KEY (agency_id, day)
);

ALTER TABLE agency_settings
    ADD COLUMN ai_daily_token_budget bigint CHECK (ai_daily_token_budget >= 0);
