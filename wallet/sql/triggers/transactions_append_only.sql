-- Ledger transactions are append-only.
CREATE TRIGGER transactions_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
ON public.ledger_transactions FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
