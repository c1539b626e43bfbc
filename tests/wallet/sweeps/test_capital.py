"""Money the house itself sends to a hot wallet is booked once, as its capital."""

import secrets

from sqlalchemy.orm import Session, sessionmaker

from wallet.database import unit_of_work
from wallet.ledger.repository import balance, system_account
from wallet.sweeps.service import book_capital


def test_capital_sent_to_a_hot_wallet_is_booked_once_per_transaction_and_asset(
    sessions: sessionmaker[Session],
) -> None:
    chain = f"chain-{secrets.token_hex(4)}"  # house accounts of their own
    funding = "0x" + secrets.token_hex(32)
    with unit_of_work(sessions) as session:
        assert book_capital(session, chain, "ETH", 5 * 10**18, funding)
        assert book_capital(session, chain, "USDC", 7 * 10**6, funding)
    with unit_of_work(sessions) as session:
        assert not book_capital(session, chain, "ETH", 5 * 10**18, funding)

    with unit_of_work(sessions) as session:
        for asset, amount in (("ETH", 5 * 10**18), ("USDC", 7 * 10**6)):
            held = balance(session, system_account(session, f"chain:{chain}", asset)).posted
            capital = balance(session, system_account(session, f"capital:{chain}", asset)).posted
            assert (held, capital) == (-amount, amount)
