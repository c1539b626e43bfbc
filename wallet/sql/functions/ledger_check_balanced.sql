-- Each INSERT into postings must leave every transaction it touches balanced per asset. By
-- induction the postings a transaction already had balance, so checking the rows of the statement
-- (its transition table) is enough: one query per INSERT, not one per row.
CREATE FUNCTION public.ledger_check_balanced()
RETURNS trigger LANGUAGE plpgsql
AS $$
DECLARE
    bad record;
BEGIN
    SELECT transaction_id, asset, sum(amount) AS total INTO bad
    FROM inserted
    GROUP BY transaction_id, asset
    HAVING sum(amount) <> 0
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'transaction % does not balance in %: postings sum to %',
            bad.transaction_id, bad.asset, bad.total USING ERRCODE = 'WL002';
    END IF;
    RETURN NULL;
END $$;
