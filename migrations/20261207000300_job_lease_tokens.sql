-- Fencing tokens for job leases.
--
-- A worker may freeze (VM pause, memory pressure, SIGSTOP) past its lease; the rescuer returns
-- the job and another run (possibly in the same process) claims it. Everything the earlier run
-- still does afterwards must change nothing. `locked_by` names the process, not the run, so each
-- claim also writes a token of its own: every statement that finishes, renews, postpones or
-- holds a running job names the job *and* its token, and statements of the job's handlers that
-- must not outlive the lease ask `job_lease_held` in the same statement.
--
-- The token means something only while the job is `running`; it is left behind otherwise.

ALTER TABLE jobs ADD COLUMN lease_token bigint;

-- Whether the run holding `token` still holds job `id` (the database's view; a worker's own
-- monotonic deadline is the stricter check before platform requests).
CREATE FUNCTION job_lease_held(p_id bigint, p_token bigint) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT EXISTS (SELECT 1 FROM jobs WHERE id = p_id AND lease_token = p_token AND state = 'running'
                                         AND locked_until > now())
$$;
