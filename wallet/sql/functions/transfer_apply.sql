-- transfer_apply checks each transfer's wallets (its tenant's; the source active, the
-- destination active or restricted), opens the accounts it needs, and hands the postings to ledger_apply; the answer has ledger_apply's shape, with
-- `unknown_wallet` and `wallet_not_active` failures besides the ledger's own. A transfer is
-- {"tenant", "source", "destination", "asset", "amount", "metadata"}, the amount in minor
-- units.
-- The statements take arrays and JSON whose sizes the planner cannot see; a custom plan per call
-- costs more than the statement itself, so the function keeps one generic plan.
CREATE FUNCTION public.transfer_apply(p_transfers jsonb, p_atomic boolean)
RETURNS jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    tenants text[];
    sources text[];
    destinations text[];
    asset_codes text[];
    amounts text[];
    transaction_metadata jsonb[];
    failures jsonb[];
    first_failure bigint;
    source_accounts bigint[];
    destination_accounts bigint[];
    applied jsonb;
    results jsonb[] := '{}';
    next_applied integer := 0;
BEGIN
    -- Arrays, not the JSON elements, feed the joins below: the planner guesses ten rows for
    -- an array (a hundred for JSON elements), which keeps the joins on the primary keys.
    SELECT array_agg(e.t ->> 'tenant' ORDER BY e.n),
           array_agg(e.t ->> 'source' ORDER BY e.n), array_agg(e.t ->> 'destination' ORDER BY e.n),
           array_agg(e.t ->> 'asset' ORDER BY e.n), array_agg(e.t ->> 'amount' ORDER BY e.n),
           array_agg(e.t -> 'metadata' ORDER BY e.n)
    INTO tenants, sources, destinations, asset_codes, amounts, transaction_metadata
    FROM jsonb_array_elements(p_transfers) WITH ORDINALITY AS e(t, n);

    -- The wallets are share-locked in id order before any account is, and stay locked to the
    -- end of the transaction: a freeze (any change of a wallet row) waits for the transfers in
    -- flight, and a transfer that waited for a freeze reads the new status below. So once a
    -- freeze has committed, no later commit moves money into or out of the wallet.
    -- (FOR KEY SHARE would not conflict with a plain UPDATE of the status.)
    PERFORM 1 FROM wallets w WHERE w.id = ANY(sources || destinations) ORDER BY w.id FOR SHARE;

    -- Each transfer's failure, or NULL when both wallets are its tenant's, the source active and
    -- the destination active or restricted (money may come in, not go out). Another
    -- tenant's wallet is unknown. (Wallets are found by id alone, whatever the statistics on
    -- tenants say.)
    SELECT array_agg(CASE
        WHEN s.tenant_id IS DISTINCT FROM x.tenant
            THEN jsonb_build_object('error', 'unknown_wallet', 'wallet_id', x.source)
        WHEN d.tenant_id IS DISTINCT FROM x.tenant
            THEN jsonb_build_object('error', 'unknown_wallet', 'wallet_id', x.destination)
        WHEN s.status <> 'active'
            THEN jsonb_build_object('error', 'wallet_not_active', 'wallet_id', s.id,
                                    'status', s.status)
        WHEN d.status NOT IN ('active', 'restricted')
            THEN jsonb_build_object('error', 'wallet_not_active', 'wallet_id', d.id,
                                    'status', d.status)
        END ORDER BY x.n)
    INTO failures
    FROM unnest(tenants, sources, destinations) WITH ORDINALITY AS x(tenant, source, destination, n)
    LEFT JOIN wallets s ON s.id = x.source
    LEFT JOIN wallets d ON d.id = x.destination;
    SELECT min(f.n) INTO first_failure
    FROM unnest(failures) WITH ORDINALITY AS f(failure, n) WHERE f.failure IS NOT NULL;
    IF p_atomic AND first_failure IS NOT NULL THEN
        RETURN jsonb_build_object('ok', false, 'results',
            jsonb_build_array(failures[first_failure] || jsonb_build_object('ok', false)));
    END IF;

    -- Accounts are opened on first use; a concurrent first use inserts the row once.
    FOR attempt IN 1 .. 2 LOOP
        SELECT array_agg(src.id ORDER BY x.n), array_agg(dst.id ORDER BY x.n)
        INTO source_accounts, destination_accounts
        FROM unnest(sources, destinations, asset_codes) WITH ORDINALITY AS x(source, destination,
                                                                         asset, n)
        LEFT JOIN accounts src ON src.wallet_id = x.source AND src.asset = x.asset
        LEFT JOIN accounts dst ON dst.wallet_id = x.destination AND dst.asset = x.asset;
        EXIT WHEN NOT EXISTS (
            SELECT 1 FROM unnest(failures, source_accounts, destination_accounts)
                AS x(failure, source, destination)
            WHERE x.failure IS NULL AND (x.source IS NULL OR x.destination IS NULL));
        INSERT INTO accounts (wallet_id, asset)
        SELECT DISTINCT w.wallet_id, x.asset
        FROM unnest(failures, sources, destinations, asset_codes) AS x(failure, source, destination,
                                                                  asset),
             LATERAL (VALUES (x.source), (x.destination)) AS w(wallet_id)
        WHERE x.failure IS NULL
        ORDER BY 1, 2
        ON CONFLICT (wallet_id, asset) DO NOTHING;
    END LOOP;

    SELECT ledger_apply(coalesce(jsonb_agg(jsonb_build_object(
               'reason', 'transfer',
               'metadata', x.metadata,
               'postings', jsonb_build_array(jsonb_build_array(x.source, '-' || x.amount),
                                             jsonb_build_array(x.destination, x.amount)))
               ORDER BY x.n), '[]'), p_atomic)
    INTO applied
    FROM unnest(failures, source_accounts, destination_accounts, amounts, transaction_metadata)
        WITH ORDINALITY AS x(failure, source, destination, amount, metadata, n)
    WHERE x.failure IS NULL;

    IF first_failure IS NULL OR (p_atomic AND NOT (applied ->> 'ok')::boolean) THEN
        RETURN applied;
    END IF;
    FOR n IN 1 .. array_length(failures, 1) LOOP
        IF failures[n] IS NULL THEN
            results := results || (applied -> 'results' -> next_applied);
            next_applied := next_applied + 1;
        ELSE
            results := results || (failures[n] || jsonb_build_object('ok', false));
        END IF;
    END LOOP;
    RETURN jsonb_build_object('ok', false, 'results', to_jsonb(results));
END $$;
