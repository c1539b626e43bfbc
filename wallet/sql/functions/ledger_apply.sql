-- ledger_apply writes a list of transactions in one round trip. Every account is locked in id
-- order before anything is checked; each transaction is checked in turn against the running
-- balances (so a batch item sees the effect of the ones before it); accepted ones are written
-- set-based: ids, postings with per-account versions and balances after, then the account rows.
-- Business failures are returned, not raised, so callers can record them (idempotent replays
-- return the first failure too). With p_atomic, any failure writes nothing.
-- The statements take arrays and JSON whose sizes the planner cannot see; a custom plan per call
-- costs more than the statement itself, so the function keeps one generic plan.
CREATE FUNCTION public.ledger_apply(p_transactions jsonb, p_atomic boolean)
RETURNS jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    ids bigint[];
    assets text[];
    available numeric[];
    may_go_negative boolean[];
    posted_before numeric[];
    versions bigint[];
    line_item integer[];
    line_slot integer[];
    line_delta numeric[];
    slot_of jsonb;
    transaction_of bigint[];
    fractional integer[];
    unbalanced integer[];
    reversed integer[];
    duplicated integer[];
    item_count integer := jsonb_array_length(p_transactions);
    line_count integer;
    pos integer := 1;
    first_line integer;
    results jsonb[] := '{}';
    accepted integer[] := '{}';
    failure jsonb;
    idx integer;
    tx_ids bigint[];
    count_ok integer;
BEGIN
    SELECT array_agg(DISTINCT (p ->> 0)::bigint) INTO ids
    FROM jsonb_array_elements(p_transactions) t, jsonb_array_elements(t -> 'postings') p;
    SELECT array_agg(a.id), array_agg(a.asset), array_agg(a.posted - a.pending_out),
           array_agg(a.allow_negative), array_agg(a.posted), array_agg(a.version)
    INTO ids, assets, available, may_go_negative, posted_before, versions
    FROM (SELECT * FROM accounts WHERE id = ANY(ids) ORDER BY id FOR UPDATE) a;
    -- Account id to slot in the arrays above: a JSON object looks a key up in log time.
    SELECT jsonb_object_agg(s.id::text, s.slot) INTO slot_of
    FROM unnest(ids) WITH ORDINALITY AS s(id, slot);

    -- Every posting line once: its transaction's number, its account's slot, its amount.
    SELECT array_agg(e.n ORDER BY e.n, q.line),
           array_agg((slot_of ->> (q.p ->> 0))::integer ORDER BY e.n, q.line),
           array_agg((q.p ->> 1)::numeric ORDER BY e.n, q.line)
    INTO line_item, line_slot, line_delta
    FROM jsonb_array_elements(p_transactions) WITH ORDINALITY AS e(t, n),
         jsonb_array_elements(e.t -> 'postings') WITH ORDINALITY AS q(p, line);
    line_count := coalesce(array_length(line_item, 1), 0);
    IF array_position(line_slot, NULL) IS NOT NULL
        OR (SELECT count(DISTINCT i) FROM unnest(line_item) AS i) <> item_count THEN
        RAISE EXCEPTION 'a transaction needs postings to known accounts' USING ERRCODE = 'WL003';
    END IF;

    -- What can be refused without the balances, for all transactions at once. Amounts are
    -- whole numbers of the smallest unit: a fraction would be rounded where it is stored
    -- (NUMERIC(78,0)) but not in the balances computed here.
    SELECT array_agg(DISTINCT l.item) INTO fractional
    FROM unnest(line_item, line_delta) AS l(item, delta) WHERE l.delta <> trunc(l.delta);
    SELECT array_agg(DISTINCT u.item) INTO unbalanced FROM (
        SELECT l.item FROM unnest(line_item, line_slot, line_delta) AS l(item, slot, delta)
        GROUP BY l.item, assets[l.slot] HAVING sum(l.delta) <> 0
    ) u;
    -- One index probe per transaction (LIMIT keeps the lookup per row): as a join, the generic
    -- plan read the whole of ledger_transactions for every call with an external reference.
    SELECT array_agg(e.n) INTO reversed
    FROM jsonb_array_elements(p_transactions) WITH ORDINALITY AS e(t, n)
    CROSS JOIN LATERAL (SELECT 1 FROM ledger_transactions lt
                        WHERE lt.reverses_id = (e.t ->> 'reverses')::bigint LIMIT 1) found;
    SELECT array_agg(e.n) INTO duplicated
    FROM jsonb_array_elements(p_transactions) WITH ORDINALITY AS e(t, n)
    CROSS JOIN LATERAL (SELECT 1 FROM ledger_transactions lt
                        WHERE lt.external_kind = e.t ->> 'external_kind'
                          AND lt.external_ref = e.t ->> 'external_ref' LIMIT 1) found;

    FOR n IN 1 .. item_count LOOP
        failure := NULL;
        first_line := pos;
        WHILE pos <= line_count AND line_item[pos] = n LOOP
            pos := pos + 1;
        END LOOP;
        IF n = ANY(fractional) THEN
            failure := jsonb_build_object('error', 'fractional_amount');
        ELSIF n = ANY(unbalanced) THEN
            failure := jsonb_build_object('error', 'unbalanced');
        ELSIF n = ANY(reversed) THEN
            failure := jsonb_build_object('error', 'already_reversed');
        ELSIF n = ANY(duplicated) THEN
            failure := jsonb_build_object('error', 'duplicate_external_ref');
        ELSE
            -- Apply in place; an account that may not go negative and now does was debited
            -- by this transaction (it was not negative before), so undo and refuse.
            FOR j IN first_line .. pos - 1 LOOP
                available[line_slot[j]] := available[line_slot[j]] + line_delta[j];
            END LOOP;
            FOR j IN first_line .. pos - 1 LOOP
                idx := line_slot[j];
                IF available[idx] < 0 AND NOT may_go_negative[idx] THEN
                    FOR j IN first_line .. pos - 1 LOOP
                        available[line_slot[j]] := available[line_slot[j]] - line_delta[j];
                    END LOOP;
                    failure := jsonb_build_object(
                        'error', 'insufficient_funds', 'account_id', ids[idx],
                        'available', available[idx]::text);
                    EXIT;
                END IF;
            END LOOP;
        END IF;

        IF failure IS NULL THEN
            accepted := accepted || n;
            results := results || jsonb_build_object('ok', true);
        ELSE
            IF p_atomic THEN
                RETURN jsonb_build_object('ok', false, 'failed_item', n, 'results',
                    to_jsonb(results || (failure || jsonb_build_object('ok', false))));
            END IF;
            results := results || (failure || jsonb_build_object('ok', false));
        END IF;
    END LOOP;

    count_ok := coalesce(array_length(accepted, 1), 0);
    IF count_ok = 0 THEN
        RETURN jsonb_build_object('ok', item_count = 0, 'results', to_jsonb(results));
    END IF;

    SELECT array_agg(nextval(pg_get_serial_sequence('ledger_transactions', 'id')))
    INTO tx_ids FROM generate_series(1, count_ok);

    INSERT INTO ledger_transactions (id, reason, metadata, external_kind, external_ref, reverses_id)
    SELECT tx_ids[k], t ->> 'reason', coalesce(t -> 'metadata', '{}'),
           t ->> 'external_kind', t ->> 'external_ref', (t ->> 'reverses')::bigint
    FROM unnest(accepted) WITH ORDINALITY AS a(item_no, k)
    JOIN LATERAL (SELECT p_transactions -> (a.item_no - 1) AS t) x ON true;

    -- Versions and balances-after continue from the values read under the lock above.
    transaction_of := array_fill(NULL::bigint, ARRAY[item_count]);
    FOR idx IN 1 .. count_ok LOOP
        transaction_of[accepted[idx]] := tx_ids[idx];
    END LOOP;
    WITH numbered AS (
        SELECT transaction_of[l.item] AS transaction_id, l.slot, l.delta AS amount,
               row_number() OVER w AS step,
               sum(l.delta) OVER w AS moved
        FROM unnest(line_item, line_slot, line_delta) WITH ORDINALITY AS l(item, slot, delta, ord)
        WHERE transaction_of[l.item] IS NOT NULL
        WINDOW w AS (PARTITION BY l.slot ORDER BY l.ord
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    ), written AS (
        INSERT INTO postings (transaction_id, account_id, asset, amount, account_version,
                              posted_after)
        SELECT transaction_id, ids[slot], assets[slot], amount, versions[slot] + step,
               posted_before[slot] + moved
        FROM numbered
        RETURNING account_id, account_version, posted_after
    )
    UPDATE accounts acc SET posted = last.posted_after, version = last.account_version
    FROM (
        SELECT DISTINCT ON (account_id) account_id, account_version, posted_after
        FROM written ORDER BY account_id, account_version DESC
    ) last
    WHERE acc.id = last.account_id AND acc.id = ANY(ids);

    FOR idx IN 1 .. count_ok LOOP
        results[accepted[idx]] := results[accepted[idx]]
            || jsonb_build_object('transaction_id', tx_ids[idx], 'created_at', now());
    END LOOP;
    RETURN jsonb_build_object('ok', count_ok = item_count, 'results', to_jsonb(results));
END $$;
