-- Holds reserve funds (pending out on the debit account, pending in on the credit account) and
-- are resolved once by ledger_resolve_hold. The accounts are locked in id order, the same order
-- every other path uses.
-- The statements take arrays and JSON whose sizes the planner cannot see; a custom plan per call
-- costs more than the statement itself, so the function keeps one generic plan.
CREATE FUNCTION public.ledger_hold(p_debit bigint, p_credit bigint, p_amount numeric, p_reason text, p_metadata jsonb)
RETURNS jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    debit accounts;
    new_id bigint;
BEGIN
    PERFORM 1 FROM accounts WHERE id IN (p_debit, p_credit) ORDER BY id FOR UPDATE;
    SELECT * INTO debit FROM accounts WHERE id = p_debit;
    IF NOT debit.allow_negative AND debit.posted - debit.pending_out < p_amount THEN
        RETURN jsonb_build_object('ok', false, 'error', 'insufficient_funds',
            'account_id', p_debit, 'available', (debit.posted - debit.pending_out)::text);
    END IF;
    UPDATE accounts SET pending_out = pending_out + p_amount WHERE id = p_debit;
    UPDATE accounts SET pending_in = pending_in + p_amount WHERE id = p_credit;
    INSERT INTO holds (debit_account_id, credit_account_id, amount, reason, metadata)
    VALUES (p_debit, p_credit, p_amount, p_reason, coalesce(p_metadata, '{}'))
    RETURNING id INTO new_id;
    RETURN jsonb_build_object('ok', true, 'hold_id', new_id);
END $$;
