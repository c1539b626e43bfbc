"""Deposit recording over made-up blocks: the watcher on `chains.FakeChain`, no node.

The same PostgreSQL and the same code as in production, from the watcher's step down; only
the chain source is the in-memory fake, so a reorg, a re-mined transaction or a block of
many deposits is a line of the test, not a devnet manoeuvre.
"""

import logging
import secrets
import threading
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from chains import FakeChain
from tests.factories import Factory
from tests.wallet.deposits.conftest import (
    deposits_of,
    events_of,
    external_refs,
    settle,
    with_chain,
)
from wallet.assets.service import Asset, AssetKind, Catalogue, Chain, store_catalogue
from wallet.database import unit_of_work
from wallet.deposits.addresses import FakeAddressIssuer
from wallet.deposits.errors import ReorgBeyondWindow
from wallet.deposits.models import DepositStatus
from wallet.deposits.service import deposit_address, unfreeze
from wallet.deposits.watcher import DepositWatcher, WatcherOptions
from wallet.ledger.reconcile import check_ledger
from wallet.ledger.repository import Balance, balance, user_account
from wallet.wallets.models import WalletStatus
from wallet.wallets.service import set_status

ETH = 10**18
USDC = 10**6
CONFIRMATIONS = 3
TOKEN = "0x" + "70" * 20

SEEN, CREDITED = DepositStatus.SEEN.value, DepositStatus.CREDITED.value
ORPHANED, REVERSED = DepositStatus.ORPHANED.value, DepositStatus.REVERSED.value
BELOW_MINIMUM, HELD = DepositStatus.BELOW_MINIMUM.value, DepositStatus.HELD.value


@dataclass
class Recording:
    """A chain of made-up blocks under a chain name of its own, and the wallet's view of it."""

    chain: FakeChain
    name: str
    catalogue: Catalogue
    sessions: sessionmaker[Session]
    factory: Factory
    native: str
    token: str

    def watcher(self, **options: object) -> DepositWatcher:
        return DepositWatcher(
            self.sessions,
            self.catalogue,
            self.name,
            self.chain,
            WatcherOptions(**options),  # type: ignore[arg-type]
        )

    def address(self, wallet_id: str) -> str:
        issuer = FakeAddressIssuer([self.catalogue.chain(self.name)])
        with unit_of_work(self.sessions) as session:
            issued = deposit_address(
                session,
                self.factory.tenant_id,
                wallet_id,
                self.name,
                issuer=issuer,
                catalogue=self.catalogue,
            )
            return issued.address.address

    def balance(self, wallet_id: str, asset: str) -> Balance:
        with unit_of_work(self.sessions) as session:
            return balance(session, user_account(session, wallet_id, asset))

    def frozen_wallet(self) -> tuple[str, str]:
        """A new wallet, frozen at once, and its deposit address."""
        wallet = self.factory.wallet()
        address = self.address(wallet)
        set_wallet_status(self, wallet, WalletStatus.FROZEN)
        return wallet, address

    def deposits(self, *wallets: str) -> list[dict[str, object]]:
        return deposits_of(self.sessions, list(wallets))

    def statuses(self, *wallets: str) -> list[object]:
        return [d["status"] for d in self.deposits(*wallets)]

    def cursor(self) -> tuple[int, str]:
        with unit_of_work(self.sessions) as session:
            row = session.execute(
                text("SELECT block_number, block_hash FROM chain_cursors WHERE chain = :chain"),
                {"chain": self.name},
            ).one()
        return (row.block_number, row.block_hash)


@pytest.fixture
def recording(catalogue: Catalogue, sessions: sessionmaker[Session], factory: Factory) -> Recording:
    tag = secrets.token_hex(3)
    name = f"fake-{tag}"
    config = Chain(name, 200_000 + secrets.randbelow(1_000_000), "fake://", CONFIRMATIONS)
    native = Asset(f"ETH-{tag}", AssetKind.NATIVE, 18, name, min_deposit=10**12)
    token = Asset(f"USDC-{tag}", AssetKind.ERC20, 6, name, TOKEN, min_deposit=10_000)
    fake_catalogue = with_chain(catalogue, config, [native, token])
    with unit_of_work(sessions) as session:
        store_catalogue(session, fake_catalogue)
    chain = FakeChain(tokens={TOKEN: token.code}, start_block=None)
    return Recording(chain, name, fake_catalogue, sessions, factory, native.code, token.code)


def test_a_deposit_is_pending_when_seen_and_credited_at_the_confirmations(
    recording: Recording,
) -> None:
    watcher = recording.watcher()
    settle(watcher)
    wallet = recording.factory.wallet()
    address = recording.address(wallet)
    eth_tx = recording.chain.pay(address, 2 * ETH + 1)
    usdc_tx = recording.chain.pay(address, 5 * USDC, token=TOKEN)
    block = recording.chain.mine()

    settle(watcher)

    deposits = recording.deposits(wallet)
    assert [(d["asset"], d["amount"], d["status"], d["block_number"]) for d in deposits] == [
        (recording.native, 2 * ETH + 1, SEEN, block),
        (recording.token, 5 * USDC, SEEN, block),
    ]
    eth = recording.balance(wallet, recording.native)
    assert (eth.pending_in, eth.posted, eth.available) == (2 * ETH + 1, 0, 0)

    recording.chain.mine(CONFIRMATIONS - 2)
    settle(watcher)
    assert recording.statuses(wallet) == [SEEN, SEEN]

    recording.chain.mine()
    settle(watcher)

    assert recording.statuses(wallet) == [CREDITED, CREDITED]
    eth, usdc = (recording.balance(wallet, a) for a in (recording.native, recording.token))
    assert (eth.pending_in, eth.posted, usdc.pending_in, usdc.posted) == (
        0,
        2 * ETH + 1,
        0,
        5 * USDC,
    )
    assert events_of(recording.sessions, str(deposits[0]["id"])) == [
        ("deposit.seen", SEEN),
        ("deposit.credited", CREDITED),
    ]
    assert sorted(external_refs(recording.sessions, [str(d["id"]) for d in deposits])) == sorted(
        [f"{recording.name}:{eth_tx}:-1", f"{recording.name}:{usdc_tx}:0"]
    )


def test_many_deposits_in_one_block_are_each_credited_and_unknown_addresses_ignored(
    recording: Recording,
) -> None:
    watcher = recording.watcher()
    settle(watcher)
    wallets = [recording.factory.wallet() for _ in range(40)]
    expected = {}
    for i, wallet in enumerate(wallets):
        address = recording.address(wallet)
        recording.chain.pay(address, (i + 1) * ETH // 1000)
        recording.chain.pay(address, (i + 1) * USDC, token=TOKEN)
        expected[wallet] = ((i + 1) * ETH // 1000, (i + 1) * USDC)
    strangers = ["0x" + secrets.token_hex(20) for _ in range(10)]
    for stranger in strangers:
        recording.chain.pay(stranger, ETH)
        recording.chain.pay(stranger, USDC, token=TOKEN)
    block = recording.chain.mine()
    recording.chain.mine(CONFIRMATIONS - 1)

    settle(watcher)

    deposits = recording.deposits(*wallets)
    assert len(deposits) == 80
    assert {(d["block_number"], d["status"]) for d in deposits} == {(block, CREDITED)}
    logs = [d["log_index"] for d in deposits if d["asset"] == recording.token]
    assert logs == list(range(40))  # one log per token transfer, in block order
    for wallet, (eth, usdc) in expected.items():
        assert recording.balance(wallet, recording.native).posted == eth
        assert recording.balance(wallet, recording.token).posted == usdc
    with unit_of_work(recording.sessions) as session:
        strays = session.execute(
            text("SELECT count(*) FROM deposits WHERE to_address = ANY(:a)"), {"a": strangers}
        ).scalar_one()
    assert strays == 0


def test_dust_below_the_minimum_is_recorded_and_reported_but_never_credited(
    recording: Recording, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = recording.watcher()
    settle(watcher)
    wallet = recording.factory.wallet()
    address = recording.address(wallet)
    min_eth = recording.catalogue.asset(recording.native).min_deposit
    min_usdc = recording.catalogue.asset(recording.token).min_deposit
    recording.chain.pay(address, min_eth - 1)
    recording.chain.pay(address, min_usdc - 1, token=TOKEN)
    recording.chain.pay(address, min_usdc, token=TOKEN)  # exactly the minimum is credited
    recording.chain.mine(CONFIRMATIONS + 1)

    with caplog.at_level(logging.WARNING, logger="wallet.deposits"):
        settle(watcher)

    deposits = recording.deposits(wallet)
    assert [(d["amount"], d["status"]) for d in deposits] == [
        (min_eth - 1, BELOW_MINIMUM),
        (min_usdc - 1, BELOW_MINIMUM),
        (min_usdc, CREDITED),
    ]
    assert deposits[0]["hold_id"] is None and deposits[1]["hold_id"] is None
    eth, usdc = (recording.balance(wallet, a) for a in (recording.native, recording.token))
    assert (eth.posted, eth.pending_in, usdc.posted, usdc.pending_in) == (0, 0, min_usdc, 0)
    assert events_of(recording.sessions, str(deposits[0]["id"])) == [
        ("deposit.seen", BELOW_MINIMUM)
    ]
    assert sum("below the minimum" in r.getMessage() for r in caplog.records) == 2


def test_a_reorg_before_crediting_orphans_and_the_same_tx_mined_later_is_credited_once(
    recording: Recording,
) -> None:
    watcher = recording.watcher()
    settle(watcher)
    wallet = recording.factory.wallet()
    address = recording.address(wallet)
    tx = recording.chain.pay(address, 3 * ETH)
    recording.chain.mine(CONFIRMATIONS - 1)
    settle(watcher)
    (seen,) = recording.deposits(wallet)
    assert seen["status"] == SEEN

    recording.chain.reorg(CONFIRMATIONS - 1)
    recording.chain.mine(CONFIRMATIONS + 1)  # the old block would have been credited by now
    outcomes = settle(watcher)

    assert any(o.rolled_back_to is not None for o in outcomes)
    assert recording.statuses(wallet) == [ORPHANED]
    eth = recording.balance(wallet, recording.native)
    assert (eth.pending_in, eth.posted) == (0, 0)

    recording.chain.pay(address, 3 * ETH, tx_hash=tx)
    block = recording.chain.mine()
    settle(watcher)
    (again,) = recording.deposits(wallet)
    assert (again["id"], again["status"], again["block_number"], again["confirmations"]) == (
        seen["id"],
        SEEN,
        block,
        1,
    )
    assert again["block_hash"] != seen["block_hash"]

    recording.chain.mine(CONFIRMATIONS - 1)
    settle(watcher)

    assert recording.statuses(wallet) == [CREDITED]
    assert recording.balance(wallet, recording.native).posted == 3 * ETH
    assert events_of(recording.sessions, str(seen["id"])) == [
        ("deposit.seen", SEEN),
        ("deposit.orphaned", ORPHANED),
        ("deposit.seen", SEEN),
        ("deposit.credited", CREDITED),
    ]
    assert external_refs(recording.sessions, [str(seen["id"])]) == [f"{recording.name}:{tx}:-1"]


def test_a_tx_re_mined_in_the_next_block_restarts_its_count(recording: Recording) -> None:
    watcher = recording.watcher()
    settle(watcher)
    wallet = recording.factory.wallet()
    address = recording.address(wallet)
    recording.chain.pay(address, 40 * USDC, token=TOKEN)
    first = recording.chain.mine()
    recording.chain.mine()
    settle(watcher)
    assert [(d["block_number"], d["confirmations"]) for d in recording.deposits(wallet)] == [
        (first, 2)
    ]

    recording.chain.reorg(2, remine=True)
    again = recording.chain.mine()
    settle(watcher)

    (deposit,) = recording.deposits(wallet)
    assert (deposit["status"], deposit["block_number"], deposit["confirmations"]) == (
        SEEN,
        again,
        1,
    )
    assert recording.balance(wallet, recording.token).pending_in == 40 * USDC
    recording.chain.mine(CONFIRMATIONS - 1)
    settle(watcher)
    assert recording.statuses(wallet) == [CREDITED]
    assert recording.balance(wallet, recording.token).posted == 40 * USDC


def test_a_reorg_after_crediting_reverses_the_credit_and_alerts(
    recording: Recording, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = recording.watcher()
    settle(watcher)
    recording.chain.mine(2)
    settle(watcher)
    wallet = recording.factory.wallet()
    address = recording.address(wallet)
    tx = recording.chain.pay(address, 5 * ETH)
    recording.chain.mine(CONFIRMATIONS)
    settle(watcher)
    assert recording.statuses(wallet) == [CREDITED]

    recording.chain.reorg(CONFIRMATIONS + 1)
    recording.chain.mine(CONFIRMATIONS + 2)
    with caplog.at_level(logging.CRITICAL, logger="wallet.deposits"):
        settle(watcher)

    (deposit,) = recording.deposits(wallet)
    assert deposit["status"] == REVERSED
    assert recording.balance(wallet, recording.native).posted == 0
    assert events_of(recording.sessions, str(deposit["id"]))[-1] == ("deposit.reversed", REVERSED)
    assert sum(r.getMessage().startswith("ALERT") for r in caplog.records) == 1
    with unit_of_work(recording.sessions) as session:
        assert all(check.ok for check in check_ledger(session))

    recording.chain.pay(address, 5 * ETH, tx_hash=tx)
    recording.chain.mine(CONFIRMATIONS)
    settle(watcher)

    assert recording.statuses(wallet) == [CREDITED]
    assert recording.balance(wallet, recording.native).posted == 5 * ETH
    assert external_refs(recording.sessions, [str(deposit["id"])]) == [
        f"{recording.name}:{tx}:-1",
        f"{recording.name}:{tx}:-1:1",
    ]


def test_a_reorg_deeper_than_the_header_window_halts_with_nothing_written(
    recording: Recording,
) -> None:
    window = CONFIRMATIONS + 2
    watcher = recording.watcher(window_size=window)
    settle(watcher)
    wallet = recording.factory.wallet()
    recording.chain.pay(recording.address(wallet), 7 * ETH)
    recording.chain.mine(window + 1)
    settle(watcher)
    assert recording.statuses(wallet) == [CREDITED]
    cursor = recording.cursor()

    recording.chain.reorg(window + 1)
    recording.chain.mine(window + 3)
    with pytest.raises(ReorgBeyondWindow, match="checked by hand"):
        watcher.step()

    assert recording.cursor() == cursor
    assert recording.statuses(wallet) == [CREDITED]
    assert recording.balance(wallet, recording.native).posted == 7 * ETH


def set_wallet_status(recording: Recording, wallet: str, status: WalletStatus) -> None:
    """Freeze the wallet, or unfreeze it as the API does (crediting its held deposits)."""
    with unit_of_work(recording.sessions) as session:
        if status is WalletStatus.ACTIVE:
            unfreeze(session, recording.catalogue, recording.factory.tenant_id, wallet)
        else:
            set_status(session, recording.factory.tenant_id, wallet, status)


def test_a_deposit_to_a_frozen_wallet_is_held_until_the_wallet_is_unfrozen(
    recording: Recording,
) -> None:
    watcher = recording.watcher()
    wallet = recording.factory.wallet()
    address = recording.address(wallet)
    settle(watcher)
    before_freeze = recording.chain.pay(address, 2 * ETH)
    recording.chain.mine()
    settle(watcher)
    set_wallet_status(recording, wallet, WalletStatus.FROZEN)
    # One seen before the freeze and confirmed after it; one that arrives during it, already
    # confirmed when the watcher first sees it.
    recording.chain.mine(CONFIRMATIONS)
    during_freeze = recording.chain.pay(address, 7 * USDC, token=TOKEN)
    recording.chain.mine(CONFIRMATIONS)

    settle(watcher)

    assert recording.statuses(wallet) == [HELD, HELD]
    eth, usdc = (recording.balance(wallet, a) for a in (recording.native, recording.token))
    assert (eth.pending_in, eth.posted, eth.available) == (2 * ETH, 0, 0)
    assert (usdc.pending_in, usdc.posted, usdc.available) == (7 * USDC, 0, 0)
    deposits = recording.deposits(wallet)
    assert external_refs(recording.sessions, [str(d["id"]) for d in deposits]) == []
    assert events_of(recording.sessions, str(deposits[0]["id"])) == [("deposit.seen", SEEN)]
    recording.chain.mine(2)
    settle(watcher)
    assert recording.statuses(wallet) == [HELD, HELD]

    set_wallet_status(recording, wallet, WalletStatus.ACTIVE)

    assert recording.statuses(wallet) == [CREDITED, CREDITED]
    eth, usdc = (recording.balance(wallet, a) for a in (recording.native, recording.token))
    assert (eth.pending_in, eth.posted, eth.available) == (0, 2 * ETH, 2 * ETH)
    assert (usdc.pending_in, usdc.posted, usdc.available) == (0, 7 * USDC, 7 * USDC)
    # Already confirmed when first seen, the second was announced as held.
    assert events_of(recording.sessions, str(deposits[1]["id"])) == [
        ("deposit.seen", HELD),
        ("deposit.credited", CREDITED),
    ]
    assert sorted(external_refs(recording.sessions, [str(d["id"]) for d in deposits])) == sorted(
        [f"{recording.name}:{before_freeze}:-1", f"{recording.name}:{during_freeze}:0"]
    )
    with unit_of_work(recording.sessions) as session:
        assert all(check.ok for check in check_ledger(session))


def test_a_held_deposit_whose_block_leaves_the_chain_is_orphaned(recording: Recording) -> None:
    watcher = recording.watcher()
    settle(watcher)
    recording.chain.mine(2)
    settle(watcher)
    wallet, address = recording.frozen_wallet()
    recording.chain.pay(address, 3 * ETH)
    recording.chain.mine(CONFIRMATIONS)
    settle(watcher)
    assert recording.statuses(wallet) == [HELD]

    recording.chain.reorg(CONFIRMATIONS + 1)
    recording.chain.mine(CONFIRMATIONS + 2)
    settle(watcher)

    assert recording.statuses(wallet) == [ORPHANED]
    eth = recording.balance(wallet, recording.native)
    assert (eth.pending_in, eth.posted) == (0, 0)
    set_wallet_status(recording, wallet, WalletStatus.ACTIVE)
    assert recording.balance(wallet, recording.native).posted == 0


def test_a_freeze_that_has_answered_holds_every_later_credit(recording: Recording) -> None:
    watcher = recording.watcher()
    settle(watcher)
    wallet = recording.factory.wallet()
    address = recording.address(wallet)
    recording.chain.pay(address, ETH)
    recording.chain.mine(CONFIRMATIONS)
    # The freeze is written but not committed when the watcher's step starts: the step waits
    # for the wallet's row, and reads the status the freeze committed.
    freezing = recording.sessions()
    set_status(freezing, recording.factory.tenant_id, wallet, WalletStatus.FROZEN)
    stepping = threading.Thread(target=settle, args=(watcher,))
    stepping.start()
    stepping.join(timeout=1)
    assert stepping.is_alive(), "the step did not wait for the freeze"
    freezing.commit()
    freezing.close()
    stepping.join(timeout=30)
    assert not stepping.is_alive()

    assert recording.statuses(wallet) == [HELD]
    assert recording.balance(wallet, recording.native).posted == 0
