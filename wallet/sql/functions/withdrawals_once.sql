-- withdrawals_once is the database's part of many withdrawal requests in one statement. Each
-- request is {"tenant", "key", "request_hash", "id", "wallet", "asset", "chain", "address",
-- "destination_type", "amount", "fee", "daily", "status", "approvals_required",
-- "requested_by", "document", "event_id"}, amounts in minor units: "fee" is null when the
-- request could not be priced, "daily" when the asset has no rolling 24-hour limit; "document"
-- is the withdrawal as the API shows it, but for its times. Its answer is, with nothing
-- written: {"internal": true} when the address is one of our deposit addresses (an internal
-- transfer, the caller's to make), {"unpriced": true} otherwise when "fee" is null; else, as
-- transfer_once answers: {"replayed": true, "request_hash", "outcome"} for a key claimed
-- before, {"refused": failure} when refused (the outcome stored under the key, nothing else
-- written), or {"replayed": false, "outcome"}: the amount plus the fee held from the wallet
-- towards `chain:<chain>`, the withdrawal row, its event (`p_event_type`) and the outcome
-- under the key. The wallet must be the tenant's and active, and what it withdrew of the
-- asset in the last 24 hours (withdrawals in `p_counted` states) plus the amount at most
-- "daily". The keys of one call must differ (SQLSTATE WL005 otherwise: idempotency_claim).
-- The statements take arrays and JSON whose sizes the planner cannot see; a custom plan per call
-- costs more than the statement itself, so the function keeps one generic plan.
CREATE FUNCTION public.withdrawals_once(p_requests jsonb, p_event_type text, p_counted text[])
RETURNS jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    tenants text[];
    keys text[];
    owned boolean[];
    claimed boolean[];
    failures jsonb[];
    debits bigint[];
    credits bigint[];
    request jsonb;
    failure jsonb;
    held jsonb;
    document jsonb;
    settled jsonb;
    stamp text;
    answers jsonb[] := '{}';
BEGIN
    SELECT array_agg(e.r ->> 'tenant' ORDER BY e.n), array_agg(e.r ->> 'key' ORDER BY e.n),
           array_agg(EXISTS (SELECT 1 FROM deposit_addresses d
                             WHERE d.chain = e.r ->> 'chain' AND d.address = e.r ->> 'address')
                     ORDER BY e.n)
    INTO tenants, keys, owned
    FROM jsonb_array_elements(p_requests) WITH ORDINALITY AS e(r, n);
    -- Requests to our deposit addresses, and those not priced, claim nothing.
    claimed := idempotency_claim(p_requests, (
        SELECT array_agg(NOT owned[e.n] AND e.r ->> 'fee' IS NOT NULL ORDER BY e.n)
        FROM jsonb_array_elements(p_requests) WITH ORDINALITY AS e(r, n)));

    -- The wallets, then the accounts, are locked in id order before anything is checked, the
    -- order of every other path: a wallet's requests are made one at a time, so its rolling
    -- limit holds under races, and a freeze waits for them. (FOR NO KEY UPDATE leaves rows
    -- that refer to the wallet free to be inserted.)
    PERFORM 1 FROM wallets w
    WHERE w.id IN (SELECT e.r ->> 'wallet'
                   FROM jsonb_array_elements(p_requests) WITH ORDINALITY AS e(r, n)
                   WHERE claimed[e.n] AND w.tenant_id = e.r ->> 'tenant')
    ORDER BY w.id FOR NO KEY UPDATE;
    SELECT array_agg(CASE
        WHEN NOT claimed[e.n] THEN NULL
        WHEN w.id IS NULL
            THEN jsonb_build_object('error', 'unknown_wallet', 'wallet_id', e.r ->> 'wallet')
        WHEN w.status <> 'active'
            THEN jsonb_build_object('error', 'wallet_not_active', 'wallet_id', w.id,
                                    'status', w.status)
        END ORDER BY e.n)
    INTO failures
    FROM jsonb_array_elements(p_requests) WITH ORDINALITY AS e(r, n)
    LEFT JOIN wallets w ON w.id = e.r ->> 'wallet' AND w.tenant_id = e.r ->> 'tenant';

    -- Accounts are opened on first use (only the missing ones: a conflict uses up an id).
    INSERT INTO accounts (wallet_id, asset)
    SELECT DISTINCT e.r ->> 'wallet', e.r ->> 'asset'
    FROM jsonb_array_elements(p_requests) WITH ORDINALITY AS e(r, n)
    WHERE claimed[e.n] AND failures[e.n] IS NULL AND NOT EXISTS (
        SELECT 1 FROM accounts a WHERE a.wallet_id = e.r ->> 'wallet' AND a.asset = e.r ->> 'asset')
    ORDER BY 1, 2
    ON CONFLICT (wallet_id, asset) DO NOTHING;
    INSERT INTO accounts (system_name, asset, allow_negative)
    SELECT DISTINCT 'chain:' || (e.r ->> 'chain'), e.r ->> 'asset', true
    FROM jsonb_array_elements(p_requests) WITH ORDINALITY AS e(r, n)
    WHERE claimed[e.n] AND failures[e.n] IS NULL AND NOT EXISTS (
        SELECT 1 FROM accounts a
        WHERE a.system_name = 'chain:' || (e.r ->> 'chain') AND a.asset = e.r ->> 'asset')
    ORDER BY 1, 2
    ON CONFLICT (system_name, asset) DO NOTHING;
    SELECT array_agg(CASE WHEN claimed[e.n] AND failures[e.n] IS NULL THEN u.id END ORDER BY e.n),
           array_agg(CASE WHEN claimed[e.n] AND failures[e.n] IS NULL THEN c.id END ORDER BY e.n)
    INTO debits, credits
    FROM jsonb_array_elements(p_requests) WITH ORDINALITY AS e(r, n)
    LEFT JOIN accounts u ON u.wallet_id = e.r ->> 'wallet' AND u.asset = e.r ->> 'asset'
    LEFT JOIN accounts c
        ON c.system_name = 'chain:' || (e.r ->> 'chain') AND c.asset = e.r ->> 'asset';
    PERFORM 1 FROM accounts a WHERE a.id = ANY(debits || credits) ORDER BY a.id FOR UPDATE;

    -- The API shows times as UTC to the microsecond, without a fraction when it is zero.
    stamp := to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN to_char(now(), 'US') = '000000' THEN '' ELSE to_char(now(), '.US') END
        || 'Z';

    -- One request at a time: each sees the holds and withdrawals of those before it.
    FOR n IN 1 .. array_length(keys, 1) LOOP
        request := p_requests -> (n - 1);
        IF owned[n] THEN
            answers := answers || jsonb_build_object('internal', true);
            CONTINUE;
        END IF;
        IF request ->> 'fee' IS NULL THEN
            answers := answers || jsonb_build_object('unpriced', true);
            CONTINUE;
        END IF;
        IF NOT claimed[n] THEN
            answers := answers || idempotency_replay(tenants[n], keys[n]);
            CONTINUE;
        END IF;
        failure := failures[n];
        IF failure IS NULL AND request ->> 'daily' IS NOT NULL AND (
            SELECT coalesce(sum(w.amount), 0) FROM withdrawals w
            WHERE w.wallet_id = request ->> 'wallet' AND w.asset = request ->> 'asset'
              AND w.created_at > now() - interval '1 day' AND w.status = ANY(p_counted)
        ) + (request ->> 'amount')::numeric > (request ->> 'daily')::numeric THEN
            failure := jsonb_build_object('error', 'daily_limit_exceeded');
        END IF;
        IF failure IS NULL THEN
            held := ledger_hold(debits[n], credits[n],
                                (request ->> 'amount')::numeric + (request ->> 'fee')::numeric,
                                'withdrawal',
                                jsonb_build_object('withdrawal_id', request ->> 'id'));
            IF NOT (held ->> 'ok')::boolean THEN
                failure := held - 'ok';
            END IF;
        END IF;
        IF failure IS NOT NULL THEN
            settled := jsonb_build_object('refused', failure);
            answers := answers || settled;
        ELSE
            INSERT INTO withdrawals (id, tenant_id, wallet_id, asset, amount, fee,
                                     destination_type, chain, address, internal, status,
                                     approvals_required, requested_by, hold_id)
            VALUES (request ->> 'id', tenants[n], request ->> 'wallet', request ->> 'asset',
                    (request ->> 'amount')::numeric, (request ->> 'fee')::numeric,
                    request ->> 'destination_type', request ->> 'chain', request ->> 'address',
                    false, request ->> 'status', (request ->> 'approvals_required')::integer,
                    request ->> 'requested_by', (held ->> 'hold_id')::bigint);
            document := (request -> 'document')
                || jsonb_build_object('created_at', stamp, 'updated_at', stamp);
            INSERT INTO outbox (event_id, tenant_id, event_type, payload)
            VALUES (request ->> 'event_id', tenants[n], p_event_type, document);
            settled := jsonb_build_object('value', document, 'problem', null);
            answers := answers || jsonb_build_object('replayed', false, 'outcome', settled);
        END IF;
        UPDATE idempotency_keys k SET outcome = settled
        WHERE k.scope = tenants[n] AND k.key = keys[n];
    END LOOP;
    RETURN to_jsonb(answers);
END $$;
