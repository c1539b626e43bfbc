-- payins_apply is payin_apply for many snapshots of p_provider's pay-ins in one statement, in
-- the order given: the events of one webhook delivery, or the provider's answers to one call.
-- Each item is {"payin", "snapshot"} and, for an event, "event": {"id", "type", "payload"}; an
-- event is stored once by its id (a redelivery's copy is answered {"duplicate": true}, nothing
-- applied) with the outcome of its snapshot. The answers are payin_apply's, one per item.
-- Every row the items may lock is locked first, each kind in id order, the order of every other
-- path (the pay-ins, the wallets a return or chargeback may restrict, then the accounts): the
-- items then lock nothing new, so two deliveries applied at once cannot deadlock.
CREATE FUNCTION public.payins_apply(p_provider text, p_items jsonb, p_bank text, p_fees text)
RETURNS jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    claimed text[];
    payin_id text;
    p payins;
    moving payins[] := '{}';
    accounts bigint[];
    item jsonb;
    answer jsonb;
    answers jsonb[] := '{}';
BEGIN
    -- A concurrent delivery of the same event waits on its row until this transaction ends.
    WITH stored AS (
        INSERT INTO provider_events (provider, event_id, event_type, payment_id, payment_version,
                                     outcome, payload)
        SELECT p_provider, i -> 'event' ->> 'id', i -> 'event' ->> 'type',
               i -> 'snapshot' ->> 'id', (i -> 'snapshot' ->> 'version')::bigint, 'unmatched',
               i -> 'event' -> 'payload'
        FROM jsonb_array_elements(p_items) AS i
        WHERE i ? 'event'
        ORDER BY i -> 'event' ->> 'id'
        ON CONFLICT DO NOTHING
        RETURNING event_id)
    SELECT coalesce(array_agg(event_id), '{}') INTO claimed FROM stored;

    -- The pay-ins some item moves to a newer version: only their rows and accounts change.
    -- Locked one by one by primary key, a plan that stays an index scan whatever the table's
    -- size when the function's plans were made.
    FOR payin_id IN SELECT DISTINCT i ->> 'payin' FROM jsonb_array_elements(p_items) AS i ORDER BY 1
    LOOP
        SELECT * INTO p FROM payins WHERE id = payin_id FOR UPDATE;
        IF FOUND AND p.provider = p_provider AND EXISTS (
            SELECT 1 FROM jsonb_array_elements(p_items) AS i
            WHERE i ->> 'payin' = p.id
              AND (i -> 'snapshot' ->> 'version')::bigint > p.provider_version
              AND (NOT i ? 'event' OR i -> 'event' ->> 'id' = ANY(claimed))) THEN
            moving := moving || p;
        END IF;
    END LOOP;
    PERFORM 1 FROM wallets w
    WHERE w.id IN (SELECT m.wallet_id
                   FROM unnest(moving) AS m
                   JOIN jsonb_array_elements(p_items) AS i ON i ->> 'payin' = m.id
                   WHERE i -> 'snapshot' ->> 'status' IN ('returned', 'charged_back'))
    ORDER BY w.id FOR NO KEY UPDATE;
    SELECT coalesce(array_agg(DISTINCT a.id), '{}') INTO accounts
    FROM unnest(moving) AS m
    CROSS JOIN LATERAL (VALUES (ledger_account(m.wallet_id, NULL, m.asset)),
                               (ledger_account(NULL, p_bank, m.asset)),
                               (ledger_account(NULL, p_fees, m.asset))) AS a(id);
    PERFORM 1 FROM accounts a WHERE a.id = ANY(accounts) ORDER BY a.id FOR UPDATE;

    FOR item IN SELECT i FROM jsonb_array_elements(p_items) AS i LOOP
        IF item ? 'event' THEN
            IF NOT item -> 'event' ->> 'id' = ANY(claimed) THEN
                answers := answers || jsonb_build_object('duplicate', true);
                CONTINUE;
            END IF;
            -- A second copy in the same delivery is a duplicate too.
            claimed := array_remove(claimed, item -> 'event' ->> 'id');
        END IF;
        answer := payin_apply(item ->> 'payin', p_provider, item -> 'snapshot', p_bank, p_fees);
        IF item ? 'event' THEN
            UPDATE provider_events
            SET outcome = CASE answer ->> 'outcome' WHEN 'applied' THEN 'applied'
                               WHEN 'stale' THEN 'stale' ELSE 'unmatched' END
            WHERE provider = p_provider AND event_id = item -> 'event' ->> 'id';
        END IF;
        answers := answers || answer;
    END LOOP;
    RETURN to_jsonb(answers);
END $$;
