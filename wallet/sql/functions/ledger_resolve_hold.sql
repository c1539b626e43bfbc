-- A hold is resolved once: posted, for the held amount or less, or voided. The hold row is
-- locked first, then the accounts in id order, the same order every other path uses.
-- The statements take arrays and JSON whose sizes the planner cannot see; a custom plan per call
-- costs more than the statement itself, so the function keeps one generic plan.
CREATE FUNCTION public.ledger_resolve_hold(p_hold bigint, p_post_amount numeric, p_metadata jsonb)
RETURNS jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    h holds;
    applied jsonb;
    tx_id bigint;
BEGIN
    SELECT * INTO h FROM holds WHERE id = p_hold FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('ok', false, 'error', 'unknown_hold');
    END IF;
    IF h.status <> 'pending' THEN
        RETURN jsonb_build_object('ok', false, 'error', 'hold_already_resolved',
                                  'status', h.status);
    END IF;
    IF p_post_amount IS NOT NULL AND (p_post_amount <= 0 OR p_post_amount > h.amount) THEN
        RETURN jsonb_build_object('ok', false, 'error', 'exceeds_hold',
                                  'held', h.amount::text);
    END IF;
    PERFORM 1 FROM accounts WHERE id IN (h.debit_account_id, h.credit_account_id)
        ORDER BY id FOR UPDATE;
    UPDATE accounts SET pending_out = pending_out - h.amount WHERE id = h.debit_account_id;
    UPDATE accounts SET pending_in = pending_in - h.amount WHERE id = h.credit_account_id;
    IF p_post_amount IS NOT NULL THEN
        applied := ledger_apply(jsonb_build_array(jsonb_build_object(
            'reason', h.reason,
            'metadata', coalesce(p_metadata, h.metadata) || jsonb_build_object('hold_id', h.id),
            'postings', jsonb_build_array(
                jsonb_build_array(h.debit_account_id, (-p_post_amount)::text),
                jsonb_build_array(h.credit_account_id, p_post_amount::text)))), true);
        IF NOT (applied ->> 'ok')::boolean THEN
            RAISE EXCEPTION 'posting hold % failed: %', h.id, applied USING ERRCODE = 'WL004';
        END IF;
        tx_id := (applied -> 'results' -> 0 ->> 'transaction_id')::bigint;
    END IF;
    UPDATE holds SET status = CASE WHEN p_post_amount IS NULL THEN 'voided' ELSE 'posted' END,
                     transaction_id = tx_id, resolved_at = now()
    WHERE id = h.id;
    RETURN jsonb_build_object('ok', true, 'hold_id', h.id, 'transaction_id', tx_id,
        'status', CASE WHEN p_post_amount IS NULL THEN 'voided' ELSE 'posted' END);
END $$;
