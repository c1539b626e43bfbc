-- ledger_void_holds releases many pending holds at once, as ledger_resolve_hold voids one: the
-- holds are locked in id order, then their accounts in id order, the order every other path
-- uses. If any hold is unknown or already resolved, nothing is released and the answer is its
-- failure.
-- The statements take arrays and JSON whose sizes the planner cannot see; a custom plan per call
-- costs more than the statement itself, so the function keeps one generic plan.
CREATE FUNCTION public.ledger_void_holds(p_holds bigint[])
RETURNS jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    unresolved holds;
    missing bigint;
BEGIN
    PERFORM 1 FROM holds WHERE id = ANY(p_holds) ORDER BY id FOR UPDATE;
    SELECT x.id INTO missing FROM unnest(p_holds) AS x(id)
    WHERE NOT EXISTS (SELECT 1 FROM holds h WHERE h.id = x.id) LIMIT 1;
    IF FOUND THEN
        RETURN jsonb_build_object('ok', false, 'error', 'unknown_hold', 'hold_id', missing);
    END IF;
    SELECT * INTO unresolved FROM holds WHERE id = ANY(p_holds) AND status <> 'pending' LIMIT 1;
    IF FOUND THEN
        RETURN jsonb_build_object('ok', false, 'error', 'hold_already_resolved',
                                  'hold_id', unresolved.id, 'status', unresolved.status);
    END IF;
    PERFORM 1 FROM accounts
    WHERE id IN (SELECT debit_account_id FROM holds WHERE id = ANY(p_holds)
                 UNION SELECT credit_account_id FROM holds WHERE id = ANY(p_holds))
    ORDER BY id FOR UPDATE;
    UPDATE accounts a SET pending_out = a.pending_out - d.amount
    FROM (SELECT debit_account_id AS id, sum(amount) AS amount FROM holds
          WHERE id = ANY(p_holds) GROUP BY debit_account_id) d
    WHERE a.id = d.id;
    UPDATE accounts a SET pending_in = a.pending_in - c.amount
    FROM (SELECT credit_account_id AS id, sum(amount) AS amount FROM holds
          WHERE id = ANY(p_holds) GROUP BY credit_account_id) c
    WHERE a.id = c.id;
    UPDATE holds SET status = 'voided', resolved_at = now() WHERE id = ANY(p_holds);
    RETURN jsonb_build_object('ok', true);
END $$;
