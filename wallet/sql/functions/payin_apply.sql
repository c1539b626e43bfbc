-- payin_apply moves the pay-in p_payin_id of p_provider (locked) to the provider's snapshot
-- p_snapshot ({"id", "status", "version", "amount", "currency", "failure_code"}) if it is
-- newer than the last one applied, and moves the ledger from what the old status implies to
-- what the new one does (wallet.payins.service tells the stages), all in one round trip:
-- pending and processing hold the net amount from p_bank to the wallet; succeeded posts the
-- amount from p_bank, the fee to p_fees and the rest to the wallet, once (external reference
-- 'payin'/id), and voids the hold; failed voids it; returned and charged back reverse the
-- credit, even if the wallet has spent it: its account may then go negative and the wallet is
-- restricted. The credit comes before the hold is voided: it locks all of the pay-in's
-- accounts at once, in the ledger's order, and each later call locks some of them again.
-- The answer: {"outcome": "unmatched"} (no such pay-in at the provider), {"outcome":
-- "stale", "payin"}, {"outcome": "mismatch", "payin"} (the snapshot's amount or currency is
-- not ours: nothing applied), or {"outcome": "applied", "changed", "restricted", "payin"},
-- "payin" being the row as it now is.
CREATE FUNCTION public.payin_apply(p_payin_id text, p_provider text, p_snapshot jsonb, p_bank text, p_fees text)
RETURNS jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    p payins;
    old_stage integer;
    new_stage integer;
    bank bigint;
    fees bigint;
    wallet bigint;
    metadata jsonb;
    postings jsonb;
    applied jsonb;
    restricted boolean := false;
    before text;
    -- What the ledger holds for a pay-in in each status (0, the rest: nothing).
    stages CONSTANT jsonb := '{"pending": 1, "processing": 1, "succeeded": 2, "returned": 3,
                               "charged_back": 3}';
BEGIN
    SELECT * INTO p FROM payins WHERE id = p_payin_id FOR UPDATE;
    IF NOT FOUND OR p.provider <> p_provider THEN
        RETURN jsonb_build_object('outcome', 'unmatched');
    END IF;
    IF (p_snapshot ->> 'version')::bigint <= p.provider_version THEN
        RETURN jsonb_build_object('outcome', 'stale', 'payin', to_jsonb(p));
    END IF;
    IF (p_snapshot ->> 'amount')::numeric <> p.amount OR p_snapshot ->> 'currency' <> p.asset THEN
        RETURN jsonb_build_object('outcome', 'mismatch', 'payin', to_jsonb(p));
    END IF;
    before := p.status;
    p.status := p_snapshot ->> 'status';
    p.provider_version := (p_snapshot ->> 'version')::bigint;
    p.provider_payment_id := p_snapshot ->> 'id';
    p.failure_code := p_snapshot ->> 'failure_code';
    p.updated_at := now();
    old_stage := coalesce((stages ->> before)::integer, 0);
    new_stage := coalesce((stages ->> p.status)::integer, 0);

    IF p.status <> before AND (new_stage > old_stage OR (old_stage = 1 AND new_stage = 0)) THEN
        IF new_stage = 3 AND p.reversal_transaction_id IS NULL THEN
            -- A reversal may restrict the wallet: its row is locked before any account, in
            -- the one lock order (a transfer share-locks its wallets, then their accounts).
            PERFORM 1 FROM wallets WHERE id = p.wallet_id FOR NO KEY UPDATE;
        END IF;
        bank := ledger_account(NULL, p_bank, p.asset);
        fees := ledger_account(NULL, p_fees, p.asset);
        wallet := ledger_account(p.wallet_id, NULL, p.asset);
        metadata := jsonb_build_object('payin_id', p.id);
        IF new_stage = 1 THEN
            applied := ledger_hold(bank, wallet, p.amount - p.fee, 'payin', metadata);
            p.hold_id := ledger_checked(applied, 'pay-in ' || p.id) ->> 'hold_id';
        END IF;
        IF new_stage >= 2 AND p.credit_transaction_id IS NULL THEN
            postings := jsonb_build_array(
                jsonb_build_array(bank, (-p.amount)::text),
                jsonb_build_array(wallet, (p.amount - p.fee)::text));
            IF p.fee <> 0 THEN
                postings := postings || jsonb_build_array(jsonb_build_array(fees, p.fee::text));
            END IF;
            applied := ledger_apply(jsonb_build_array(jsonb_build_object(
                'reason', 'payin', 'metadata', metadata, 'postings', postings,
                'external_kind', 'payin', 'external_ref', p.id)), true);
            p.credit_transaction_id :=
                ledger_checked(applied, 'pay-in ' || p.id) -> 'results' -> 0 ->> 'transaction_id';
        END IF;
        IF old_stage = 1 AND p.hold_id IS NOT NULL THEN
            PERFORM ledger_checked(ledger_resolve_hold(p.hold_id, NULL, NULL), 'pay-in ' || p.id);
        END IF;
        IF new_stage = 3 AND p.reversal_transaction_id IS NULL THEN
            SELECT jsonb_agg(jsonb_build_array(account_id, (-amount)::text) ORDER BY account_id)
            INTO postings FROM postings WHERE transaction_id = p.credit_transaction_id;
            applied := ledger_apply(jsonb_build_array(jsonb_build_object(
                'reason', 'reversal', 'metadata', metadata, 'postings', postings,
                'reverses', p.credit_transaction_id)), true);
            IF applied -> 'results' -> -1 @> jsonb_build_object('error', 'insufficient_funds') THEN
                -- The wallet spent the credit: its balance goes negative, nothing may leave it.
                restricted := true;
                UPDATE accounts SET allow_negative = true WHERE id = wallet;
                UPDATE wallets SET status = 'restricted' WHERE id = p.wallet_id AND status = 'active';
                applied := ledger_apply(jsonb_build_array(jsonb_build_object(
                    'reason', 'reversal', 'metadata', metadata, 'postings', postings,
                    'reverses', p.credit_transaction_id)), true);
            END IF;
            p.reversal_transaction_id :=
                ledger_checked(applied, 'pay-in ' || p.id) -> 'results' -> 0 ->> 'transaction_id';
        END IF;
    END IF;

    UPDATE payins SET
        status = p.status, provider_version = p.provider_version,
        provider_payment_id = p.provider_payment_id, failure_code = p.failure_code,
        updated_at = p.updated_at, hold_id = p.hold_id,
        credit_transaction_id = p.credit_transaction_id,
        reversal_transaction_id = p.reversal_transaction_id
    WHERE id = p.id;
    RETURN jsonb_build_object('outcome', 'applied', 'changed', p.status <> before,
                              'restricted', restricted, 'payin', to_jsonb(p));
END $$;
