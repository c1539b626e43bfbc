-- Postings are append-only.
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON public.postings
FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
