-- Postings and ledger transactions are append-only: any change or removal is refused.
CREATE FUNCTION public.ledger_reject_change()
RETURNS trigger LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'WL001';
END $$;
