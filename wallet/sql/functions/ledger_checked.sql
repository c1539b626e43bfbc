-- ledger_checked is a ledger function's outcome document, p_outcome, when it says ok; a
-- refusal the caller cannot have caused is raised instead (SQLSTATE WL004), with p_context.
CREATE FUNCTION public.ledger_checked(p_outcome jsonb, p_context text)
RETURNS jsonb LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT (p_outcome ->> 'ok')::boolean THEN
        RAISE EXCEPTION '%: the ledger refused: %', p_context, p_outcome USING ERRCODE = 'WL004';
    END IF;
    RETURN p_outcome;
END $$;
