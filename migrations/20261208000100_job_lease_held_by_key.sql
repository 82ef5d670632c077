-- `job_lease_held` finds its job by the primary key.
--
-- With every condition in one WHERE clause the planner may read the partial index of running
-- jobs and filter it by id: statistics taken at a quiet moment make that index look empty, but
-- in a burst it holds thousands of rows, read again on every call. `OFFSET 0` keeps the
-- conditions out of the subquery, so only `id = p_id` picks the index.

CREATE OR REPLACE FUNCTION job_lease_held(p_id bigint, p_token bigint) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT EXISTS (
        SELECT 1 FROM (SELECT lease_token, state, locked_until FROM jobs WHERE id = p_id OFFSET 0) j
        WHERE j.lease_token = p_token AND j.state = 'running' AND j.locked_until > now())
$$;
