-- Every INSERT into postings leaves each transaction it touches balanced per asset.
CREATE TRIGGER postings_balanced AFTER INSERT ON public.postings
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_balanced();
