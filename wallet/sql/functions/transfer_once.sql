-- transfer_once is the whole write of many transfer requests in one statement. Each request
-- is {"tenant", "key", "request_hash", "transfer", "document", "event_id"}; its answer is
-- {"replayed": true, "request_hash", "outcome"} when the key was claimed before (the caller
-- compares the hashes), {"refused": failure} when the transfer is refused (nothing of it is
-- written but the outcome {"refused": failure} under the key, so that a retry is refused the
-- same way), or {"replayed": false, "outcome"} when the transfer is made: then the event
-- (`p_event_type`) is in the outbox and the outcome, `document` with the transfer's id
-- (`p_id_prefix` and the ledger transaction's number) and time, is stored under the key.
-- The keys of one call must differ (SQLSTATE WL005 otherwise: idempotency_claim).
-- The statements take arrays and JSON whose sizes the planner cannot see; a custom plan per call
-- costs more than the statement itself, so the function keeps one generic plan.
CREATE FUNCTION public.transfer_once(p_requests jsonb, p_id_prefix text, p_event_type text)
RETURNS jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    tenants text[];
    keys text[];
    claimed boolean[];
    applied jsonb;
    item jsonb;
    document jsonb;
    outcome jsonb;
    next_applied integer := 0;
    answers jsonb[] := '{}';
    made integer[] := '{}';
    documents jsonb[] := '{}';
    settled integer[] := '{}';
    outcomes jsonb[] := '{}';
BEGIN
    SELECT array_agg(e.r ->> 'tenant' ORDER BY e.n), array_agg(e.r ->> 'key' ORDER BY e.n)
    INTO tenants, keys
    FROM jsonb_array_elements(p_requests) WITH ORDINALITY AS e(r, n);
    claimed := idempotency_claim(p_requests, NULL);

    SELECT transfer_apply(coalesce(jsonb_agg(e.r -> 'transfer' ORDER BY e.n), '[]'), false)
    INTO applied
    FROM jsonb_array_elements(p_requests) WITH ORDINALITY AS e(r, n)
    WHERE claimed[e.n];

    FOR n IN 1 .. array_length(keys, 1) LOOP
        IF NOT claimed[n] THEN
            answers := answers || idempotency_replay(tenants[n], keys[n]);
            CONTINUE;
        END IF;
        item := applied -> 'results' -> next_applied;
        next_applied := next_applied + 1;
        IF (item ->> 'ok')::boolean THEN
            document := (p_requests -> (n - 1) -> 'document') || jsonb_build_object(
                'id', p_id_prefix || (item ->> 'transaction_id'),
                'created_at', to_char((item ->> 'created_at')::timestamptz AT TIME ZONE 'UTC',
                                      'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'));
            made := made || n;
            documents := documents || document;
            outcome := jsonb_build_object('value', document, 'problem', null);
            answers := answers || jsonb_build_object('replayed', false, 'outcome', outcome);
        ELSE
            outcome := jsonb_build_object('refused', item - 'ok');
            answers := answers || outcome;
        END IF;
        settled := settled || n;
        outcomes := outcomes || outcome;
    END LOOP;

    INSERT INTO outbox (event_id, tenant_id, event_type, payload)
    SELECT p_requests -> (m.n - 1) ->> 'event_id', tenants[m.n], p_event_type, m.document
    FROM unnest(made, documents) WITH ORDINALITY AS m(n, document, position)
    ORDER BY m.position;
    UPDATE idempotency_keys k SET outcome = s.outcome
    FROM unnest(settled, outcomes) AS s(n, outcome)
    WHERE k.scope = tenants[s.n] AND k.key = keys[s.n];
    RETURN to_jsonb(answers);
END $$;
