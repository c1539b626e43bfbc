-- payins_once records many pay-in requests of p_provider in one statement, before the provider
-- is asked. Each request is {"tenant", "key", "request_hash", "id", "wallet", "bank_account",
-- "asset", "amount", "fee"} (minor units), or, for one the caller refused already (an asset or
-- amount it cannot take), {"tenant", "key", "request_hash", "problem"}. Its answer is
-- {"replayed": true, "request_hash", "outcome"} for a key claimed before (the caller compares
-- the hashes); {"refused": failure} when the wallet or the bank account does not allow it
-- (the outcome {"refused": failure} stored under the key, nothing else written); or
-- {"replayed": false, "outcome", "token"}: the pay-in written `creating` under "id", the
-- outcome {"value": {"payin_id"}, "problem": null} (or the caller's problem) stored under the
-- key, and the bank account's token at the provider. The wallet must be the tenant's, active
-- or restricted (a restricted wallet may still receive), and the bank account the tenant's,
-- not deleted, linked to that wallet at p_provider in the asset. The keys of one call must
-- differ (SQLSTATE WL005 otherwise: idempotency_claim).
-- The statements take arrays and JSON whose sizes the planner cannot see; a custom plan per call
-- costs more than the statement itself, so the function keeps one generic plan.
CREATE FUNCTION public.payins_once(p_requests jsonb, p_provider text)
RETURNS jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    tenants text[];
    keys text[];
    claimed boolean[];
    request jsonb;
    failure jsonb;
    settled jsonb;
    w wallets;
    b bank_accounts;
    answers jsonb[] := '{}';
BEGIN
    SELECT array_agg(e.r ->> 'tenant' ORDER BY e.n), array_agg(e.r ->> 'key' ORDER BY e.n)
    INTO tenants, keys
    FROM jsonb_array_elements(p_requests) WITH ORDINALITY AS e(r, n);
    claimed := idempotency_claim(p_requests, NULL);

    FOR n IN 1 .. array_length(keys, 1) LOOP
        request := p_requests -> (n - 1);
        IF NOT claimed[n] THEN
            answers := answers || idempotency_replay(tenants[n], keys[n]);
            CONTINUE;
        END IF;
        failure := NULL;
        IF NOT request ? 'problem' THEN
            SELECT * INTO w FROM wallets WHERE id = request ->> 'wallet' AND tenant_id = tenants[n];
            IF NOT FOUND THEN
                failure := jsonb_build_object('error', 'unknown_wallet',
                                              'wallet_id', request ->> 'wallet');
            ELSIF w.status NOT IN ('active', 'restricted') THEN
                failure := jsonb_build_object('error', 'wallet_not_active', 'wallet_id', w.id,
                                              'status', w.status);
            ELSE
                SELECT * INTO b FROM bank_accounts
                WHERE id = request ->> 'bank_account' AND tenant_id = tenants[n]
                  AND deleted_at IS NULL;
                IF NOT FOUND THEN
                    failure := jsonb_build_object('error', 'unknown_bank_account',
                                                  'bank_account_id', request ->> 'bank_account');
                ELSIF b.wallet_id <> w.id OR b.provider <> p_provider
                        OR b.currency <> request ->> 'asset' THEN
                    failure := jsonb_build_object('error', 'bank_account_mismatch',
                                                  'bank_account_id', b.id, 'wallet_id', b.wallet_id,
                                                  'provider', b.provider, 'currency', b.currency);
                END IF;
            END IF;
        END IF;

        IF request ? 'problem' THEN
            settled := jsonb_build_object('value', null, 'problem', request -> 'problem');
            answers := answers || jsonb_build_object('replayed', false, 'outcome', settled);
        ELSIF failure IS NOT NULL THEN
            settled := jsonb_build_object('refused', failure);
            answers := answers || settled;
        ELSE
            INSERT INTO payins (id, tenant_id, wallet_id, bank_account_id, provider, asset, amount,
                                fee, status, provider_version)
            VALUES (request ->> 'id', tenants[n], w.id, b.id, p_provider, request ->> 'asset',
                    (request ->> 'amount')::numeric, (request ->> 'fee')::numeric, 'creating', 0);
            settled := jsonb_build_object('value', jsonb_build_object('payin_id', request ->> 'id'),
                                          'problem', null);
            answers := answers || jsonb_build_object('replayed', false, 'outcome', settled,
                                                     'token', b.token);
        END IF;
        UPDATE idempotency_keys k SET outcome = settled
        WHERE k.scope = tenants[n] AND k.key = keys[n];
    END LOOP;
    RETURN to_jsonb(answers);
END $$;
