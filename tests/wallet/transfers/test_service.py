"""Transfers between wallets, and each kind of bad input as its own clear error."""

from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import Factory
from wallet.assets.errors import UnknownAsset
from wallet.assets.service import Catalogue
from wallet.database import unit_of_work
from wallet.errors import WalletError
from wallet.ledger.errors import InsufficientFunds
from wallet.ledger.repository import wallet_balances
from wallet.money import AmountNotPositive, AmountTooLarge, TooManyDecimals, parse_amount
from wallet.transfers.errors import SameWallet
from wallet.transfers.service import TransferRequest, get_transfer
from wallet.wallets.errors import UnknownWallet, WalletNotActive
from wallet.wallets.models import WalletStatus
from wallet.wallets.service import set_status


def ledger_size(session: Session) -> int:
    return int(session.execute(text("SELECT count(*) FROM postings")).scalar_one())


def test_a_transfer_moves_money_and_can_be_read_back(
    factory: Factory, sessions: sessionmaker[Session], catalogue: Catalogue
) -> None:
    alice, bob = factory.wallet(), factory.wallet()
    factory.fund(alice, "USDC", 5_000_000)
    amount = parse_amount("1.25", catalogue.asset("USDC").decimals)
    done = factory.transfer(
        TransferRequest(factory.tenant_id, alice, bob, "USDC", amount, "tip", {"post": 7})
    )
    with unit_of_work(sessions) as session:
        read = get_transfer(session, factory.tenant_id, done["id"])
        balances = {b.asset: b.posted for b in wallet_balances(session, bob)}
    assert (read.amount, read.memo, read.metadata) == (1_250_000, "tip", {"post": 7})
    assert (read.source_wallet_id, read.destination_wallet_id) == (alice, bob)
    assert balances == {"USDC": 1_250_000}


BadRequest = Callable[[Factory, str, str], TransferRequest]

BAD_REQUESTS: dict[str, tuple[BadRequest, type[WalletError]]] = {
    "unknown asset": (lambda f, a, b: TransferRequest(f.tenant_id, a, b, "DOGE", 1), UnknownAsset),
    "zero": (lambda f, a, b: TransferRequest(f.tenant_id, a, b, "USD", 0), AmountNotPositive),
    "negative": (lambda f, a, b: TransferRequest(f.tenant_id, a, b, "USD", -5), AmountNotPositive),
    "above uint256": (
        lambda f, a, b: TransferRequest(f.tenant_id, a, b, "USD", 2**256),
        AmountTooLarge,
    ),
    "same wallet": (lambda f, a, b: TransferRequest(f.tenant_id, a, a, "USD", 1), SameWallet),
    "unknown wallet": (
        lambda f, a, b: TransferRequest(f.tenant_id, a, "wal_nope", "USD", 1),
        UnknownWallet,
    ),
    "another tenant's wallet": (
        lambda f, a, b: TransferRequest("ten_other", a, b, "USD", 1),
        UnknownWallet,
    ),
    "more than the balance": (
        lambda f, a, b: TransferRequest(f.tenant_id, a, b, "USD", 10_001),
        InsufficientFunds,
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_is_a_distinct_error_and_writes_nothing(
    factory: Factory, sessions: sessionmaker[Session], catalogue: Catalogue, case: str
) -> None:
    alice, bob = factory.wallet(), factory.wallet()
    factory.fund(alice, "USD", 10_000)
    build, expected = BAD_REQUESTS[case]
    with unit_of_work(sessions) as session:
        before = ledger_size(session)
    with pytest.raises(expected):
        factory.transfer(build(factory, alice, bob))
    with unit_of_work(sessions) as session:
        assert ledger_size(session) == before


def test_too_many_decimals_is_refused_not_rounded(catalogue: Catalogue) -> None:
    with pytest.raises(TooManyDecimals):
        parse_amount("1.005", catalogue.asset("USD").decimals)


@pytest.mark.parametrize("status", [WalletStatus.FROZEN, WalletStatus.CLOSED])
def test_a_frozen_or_closed_wallet_neither_sends_nor_receives(
    factory: Factory, sessions: sessionmaker[Session], catalogue: Catalogue, status: WalletStatus
) -> None:
    alice, bob = factory.wallet(), factory.wallet()
    factory.fund(alice, "USD", 100)
    with unit_of_work(sessions) as session:
        set_status(session, factory.tenant_id, bob, status)
    for source, destination in [(alice, bob), (bob, alice)]:
        with pytest.raises(WalletNotActive):
            factory.transfer(TransferRequest(factory.tenant_id, source, destination, "USD", 1))
