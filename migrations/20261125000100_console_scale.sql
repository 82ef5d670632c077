-- The console at 10,000 clients and 1,000,000 content items (checked with EXPLAIN (ANALYZE,
-- BUFFERS) on the `deploy/dev bench console` data).
--
-- The agency-wide calendar counts a month's publications per day and state: with the state in
-- the index that is an index-only scan instead of ~100,000 heap visits. The new index has the
-- same key as `publications_agency_scheduled_idx`, which it replaces for every query that used
-- it.
CREATE INDEX publications_agency_scheduled_state_idx ON publications (agency_id, scheduled_at) INCLUDE (state);
DROP INDEX publications_agency_scheduled_idx;

-- The review queue: the agency's items waiting for review in (slot, id) order, the keyset the
-- page walks. A partial index holds only those (a few percent of all items), so the first page
-- is an index-only scan that stops after 21 rows instead of an incremental sort, and the
-- dashboard's "waiting for review" counts a small index.
CREATE INDEX content_items_pending_review_idx ON content_items (agency_id, slot_at, id)
    WHERE state = 'pending_review';
