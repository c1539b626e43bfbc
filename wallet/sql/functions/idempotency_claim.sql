-- idempotency_claim claims the idempotency keys of many requests in one statement. Each request
-- is {"tenant", "key", "request_hash"}; those whose `p_wanted` entry is true are claimed (all
-- of them when `p_wanted` is null). The answer is, for each request in order, whether this call
-- claimed its key. Keys are claimed in one order by every call, so two calls never wait on each
-- other's claims in a cycle; a key claimed by a call still running waits for it to end. The keys
-- of one call must differ (SQLSTATE WL005 otherwise): one claim would make both.
-- The statements take arrays and JSON whose sizes the planner cannot see; a custom plan per call
-- costs more than the statement itself, so the function keeps one generic plan.
CREATE FUNCTION public.idempotency_claim(p_requests jsonb, p_wanted boolean[])
RETURNS boolean[] LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    claimed boolean[];
BEGIN
    IF (SELECT count(DISTINCT (e.r ->> 'tenant', e.r ->> 'key'))
        FROM jsonb_array_elements(p_requests) AS e(r)) <> jsonb_array_length(p_requests) THEN
        RAISE EXCEPTION 'an idempotency key is used twice in one call' USING ERRCODE = 'WL005';
    END IF;
    WITH inserted AS (
        INSERT INTO idempotency_keys (scope, key, request_hash)
        SELECT e.r ->> 'tenant', e.r ->> 'key', e.r ->> 'request_hash'
        FROM jsonb_array_elements(p_requests) WITH ORDINALITY AS e(r, n)
        WHERE coalesce(p_wanted[e.n], p_wanted IS NULL)
        ORDER BY 1, 2
        ON CONFLICT DO NOTHING
        RETURNING scope, key
    )
    SELECT array_agg(i.key IS NOT NULL ORDER BY e.n) INTO claimed
    FROM jsonb_array_elements(p_requests) WITH ORDINALITY AS e(r, n)
    LEFT JOIN inserted i ON i.scope = e.r ->> 'tenant' AND i.key = e.r ->> 'key';
    RETURN claimed;
END $$;
