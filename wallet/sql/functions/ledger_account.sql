-- ledger_account is the id of an account in p_asset, opened on first use: the wallet's
-- (p_wallet), or else the house or outside-world account p_system_name, which may go negative.
-- Each statement takes its own snapshot: an account a concurrent first use inserted (the
-- insert waits for it) is seen by the select after it.
CREATE FUNCTION public.ledger_account(p_wallet text, p_system_name text, p_asset text)
RETURNS bigint LANGUAGE plpgsql
AS $$
DECLARE
    found_id bigint;
BEGIN
    -- Found at once but for its first use: one statement, not two.
    IF p_wallet IS NULL THEN
        SELECT id INTO found_id FROM accounts WHERE system_name = p_system_name AND asset = p_asset;
    ELSE
        SELECT id INTO found_id FROM accounts WHERE wallet_id = p_wallet AND asset = p_asset;
    END IF;
    IF FOUND THEN
        RETURN found_id;
    END IF;
    IF p_wallet IS NULL THEN
        INSERT INTO accounts (system_name, asset, allow_negative)
        VALUES (p_system_name, p_asset, true)
        ON CONFLICT (system_name, asset) DO NOTHING;
        SELECT id INTO found_id FROM accounts WHERE system_name = p_system_name AND asset = p_asset;
    ELSE
        INSERT INTO accounts (wallet_id, asset) VALUES (p_wallet, p_asset)
        ON CONFLICT (wallet_id, asset) DO NOTHING;
        SELECT id INTO found_id FROM accounts WHERE wallet_id = p_wallet AND asset = p_asset;
    END IF;
    RETURN found_id;
END $$;
