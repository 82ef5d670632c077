-- One audit entry appended in one call: take the chain's lock, read its last hash and the time,
-- and write the entry with its hash. A plpgsql function because each of its statements takes
-- a new snapshot: the read after the lock sees the entry the lock waited for, which a single
-- statement (its snapshot taken before it waits) would not. The caller hashes the entry's own
-- fields beforehand (`p_fields`); the hash is SHA-256 of the previous hash, those fields and the
-- time in microseconds, each but `p_fields` prefixed by its length as 8 big-endian bytes
-- (`audit::chain_hash` recomputes it to verify the chain).
CREATE FUNCTION audit_append(p_agency uuid, p_actor uuid, p_label text, p_action text, p_target_type text,
                             p_target_id text, p_details jsonb, p_ip inet, p_fields bytea)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    prev bytea;
    at timestamptz;
    new_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('audit:' || coalesce(p_agency::text, 'system'), 0));
    IF p_agency IS NULL THEN
        SELECT hash INTO prev FROM audit_log WHERE agency_id IS NULL ORDER BY id DESC LIMIT 1;
    ELSE
        SELECT hash INTO prev FROM audit_log WHERE agency_id = p_agency ORDER BY id DESC LIMIT 1;
    END IF;
    -- microseconds: what Postgres stores, so verification recomputes the same value
    at := date_trunc('microseconds', clock_timestamp());
    INSERT INTO audit_log (agency_id, actor_user_id, actor_label, action, target_type, target_id, details, ip,
                           created_at, prev_hash, hash)
    VALUES (p_agency, p_actor, p_label, p_action, p_target_type, p_target_id, p_details, p_ip, at, prev,
            sha256(int8send(coalesce(octet_length(prev), 0)::int8) || coalesce(prev, '\x'::bytea)
                   || p_fields
                   || int8send(8::int8) || int8send((extract(epoch FROM at) * 1000000)::int8)))
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;
