-- idempotency_replay is the answer of a batched request whose key was claimed before:
-- {"replayed": true, "request_hash", "outcome"} as stored under it, for the caller to compare
-- the hashes.
CREATE FUNCTION public.idempotency_replay(p_scope text, p_key text)
RETURNS jsonb LANGUAGE sql STABLE
AS $$
    SELECT jsonb_build_object('replayed', true, 'request_hash', k.request_hash,
                              'outcome', k.outcome)
    FROM idempotency_keys k WHERE k.scope = p_scope AND k.key = p_key
$$;
