"""The watcher's step confirms what the broadcaster sent: posted after the confirmations,
failed on status 0, back to broadcast and re-sent after a reorg, an alert for strangers."""

import logging
import secrets

import pytest
from eth_utils.crypto import keccak
from sqlalchemy import text

from chains import FeePolicy, FeeQuote, native_transfer, quote_fees
from tests.wallet.deposits.conftest import CONFIRMATIONS, events_of, settle
from tests.wallet.withdrawals.conftest import ETH, USDC, SendingChain
from wallet.database import unit_of_work
from wallet.deposits.watcher import DepositWatcher
from wallet.ledger.reconcile import check_ledger
from wallet.ledger.repository import balance, system_account, user_account
from wallet.sweeps.holdings import reconcile_chain
from wallet.webhooks.secrets import SecretBox
from wallet.webhooks.service import create_endpoint


def outside() -> str:
    return "0x" + secrets.token_hex(20)


def account(chain: SendingChain, wallet_or_name: str, asset: str) -> tuple[int, int]:
    """(posted, pending_out) of a wallet's account, or of a system account by name."""
    with unit_of_work(chain.factory.sessions) as session:
        if wallet_or_name.startswith("wal_"):
            account_id = user_account(session, wallet_or_name, asset)
        else:
            account_id = system_account(session, wallet_or_name, asset)
        found = balance(session, account_id)
        return found.posted, found.pending_out


def holdings_differences(chain: SendingChain) -> list[int | None]:
    """What `wallet reconcile` finds between the chain's holdings and the ledger, per asset."""
    with unit_of_work(chain.factory.sessions) as session:
        found = reconcile_chain(
            session, chain.catalogue, chain.live.name, chain.dev.rpc, [chain.hot.address]
        )
        return [holding.difference for holding in found]


def ledger_is_sound(chain: SendingChain) -> bool:
    with unit_of_work(chain.factory.sessions) as session:
        return all(check.ok for check in check_ledger(session))


def mine_a_withdrawal(chain: SendingChain, blocks: int) -> tuple[DepositWatcher, str, str, str]:
    """A 0.5 ETH withdrawal from a wallet of 1 ETH, sent and mined, `blocks` blocks mined from
    its own on, and the watcher caught up: (watcher, wallet, destination, withdrawal)."""
    watcher = chain.live.watcher()
    settle(watcher)
    wallet = chain.factory.wallet()
    chain.factory.fund(wallet, chain.live.native, ETH)
    chain.fund_hot_wallet(2 * ETH)
    to = outside()
    withdrawal = chain.request(wallet, chain.live.native, "0.5", to)
    chain.broadcaster().run()
    chain.dev.mine(blocks)
    settle(watcher)
    return watcher, wallet, to, withdrawal


def replace_blocks(chain: SendingChain, depth: int) -> None:
    """A reorg replacing the newest `depth` blocks with one holding only an unrelated transfer:
    what they held is gone."""
    marker = {"from": chain.dev.accounts[9].address, "to": outside(), "value": "0x1"}
    chain.dev.devnet.reorg(depth, [(marker, 0)])


def test_eth_and_usdc_are_posted_after_the_confirmations(sending_chain: SendingChain) -> None:
    chain = sending_chain
    watcher = chain.live.watcher()
    settle(watcher)
    wallet = chain.factory.wallet()
    chain.factory.fund(wallet, chain.live.native, 2 * ETH)
    chain.factory.fund(wallet, chain.live.token, 1000 * USDC)
    chain.fund_hot_wallet(10 * ETH, 500 * USDC)
    eth_to, usdc_to = outside(), outside()
    eth = chain.request(wallet, chain.live.native, "1.25", eth_to)
    usdc = chain.request(wallet, chain.live.token, "250", usdc_to)
    quoted = {w: chain.withdrawal(w)["fee"] for w in (eth, usdc)}
    chain.broadcaster().run()
    chain.dev.mine()

    settle(watcher)
    assert [chain.withdrawal(w)["confirmations"] for w in (eth, usdc)] == [1, 1]
    assert chain.withdrawal(eth)["status"] == "broadcast"
    assert holdings_differences(chain) == [0, 0]  # mined, not yet posted: in flight
    chain.dev.mine(CONFIRMATIONS - 1)
    settle(watcher)

    native, token = chain.live.native, chain.live.token
    done = {w: chain.withdrawal(w) for w in (eth, usdc)}
    assert [d["status"] for d in done.values()] == ["confirmed", "confirmed"]
    assert chain.dev.devnet.balance(eth_to) == 125 * ETH // 100
    assert chain.dev.devnet.token_balance(chain.dev.token_address, usdc_to) == 250 * USDC
    assert account(chain, wallet, native) == (2 * ETH - 125 * ETH // 100 - int(quoted[eth]), 0)
    assert account(chain, wallet, token) == (1000 * USDC - 250 * USDC - int(quoted[usdc]), 0)
    network_fees = sum(int(d["network_fee"]) for d in done.values())
    fees = f"fees:{chain.live.name}"
    assert account(chain, fees, native) == (int(quoted[eth]) - network_fees, 0)
    assert account(chain, fees, token) == (int(quoted[usdc]), 0)
    assert int(done[eth]["network_fee"]) <= int(quoted[eth]) - 10**14  # never more than quoted
    assert ledger_is_sound(chain)
    assert holdings_differences(chain) == [0, 0]
    assert [e for e, _ in events_of(chain.factory.sessions, eth)] == [
        "withdrawal.requested",
        "withdrawal.signed",
        "withdrawal.broadcast",
        "withdrawal.mined",
        "withdrawal.confirmed",
    ]


def test_a_status_0_receipt_fails_the_withdrawal_releases_the_hold_and_books_the_fee(
    sending_chain: SendingChain,
) -> None:
    chain = sending_chain
    watcher = chain.live.watcher()
    settle(watcher)
    wallet = chain.factory.wallet()
    chain.factory.fund(wallet, chain.live.token, 100 * USDC)
    chain.fund_hot_wallet(ETH, 100 * USDC)
    withdrawal = chain.request(wallet, chain.live.token, "60", outside())
    chain.broadcaster().run()
    # The hot wallet's tokens vanish before the transfer is mined: it reverts.
    slot = keccak(bytes.fromhex(chain.hot.address[2:]).rjust(32, b"\0") + (1).to_bytes(32, "big"))
    chain.dev.rpc.call(
        "anvil_setStorageAt", chain.dev.token_address, "0x" + slot.hex(), "0x" + "00" * 32
    )
    chain.dev.mine(CONFIRMATIONS)

    settle(watcher)

    failed = chain.withdrawal(withdrawal)
    assert (failed["status"], failed["succeeded"]) == ("failed", False)
    assert account(chain, wallet, chain.live.token) == (100 * USDC, 0)
    fees = f"fees:{chain.live.name}"
    assert account(chain, fees, chain.live.native) == (-int(failed["network_fee"]), 0)
    assert int(failed["network_fee"]) > 0
    assert ledger_is_sound(chain)
    assert holdings_differences(chain) == [0, -100 * USDC]  # the tokens wiped above


def test_a_reorg_removing_a_mined_withdrawal_sends_it_again_and_confirms_it_once(
    sending_chain: SendingChain,
) -> None:
    chain = sending_chain
    watcher, _, to, withdrawal = mine_a_withdrawal(chain, blocks=1)
    assert chain.withdrawal(withdrawal)["block_number"] is not None

    replace_blocks(chain, 1)
    settle(watcher)

    back = chain.withdrawal(withdrawal)
    assert (back["status"], back["block_number"], back["tx_hash"]) == ("broadcast", None, None)
    assert chain.broadcaster().run().sent == []  # re-sent: it was broadcast already
    chain.dev.mine(CONFIRMATIONS)
    settle(watcher)
    done = chain.withdrawal(withdrawal)
    assert done["status"] == "confirmed"
    assert chain.dev.devnet.balance(to) == ETH // 2
    assert len(chain.attempts(withdrawal)) == 1
    with unit_of_work(chain.factory.sessions) as session:
        postings = session.execute(
            text(
                "SELECT count(*) FROM ledger_transactions WHERE metadata ->> 'withdrawal_id' = :w"
            ),
            {"w": withdrawal},
        ).scalar_one()
    assert postings == 1
    assert "withdrawal.reorged" in [e for e, _ in events_of(chain.factory.sessions, withdrawal)]
    assert ledger_is_sound(chain)


def test_a_reorg_deeper_than_the_confirmations_sends_a_confirmed_withdrawal_again_and_alerts(
    sending_chain: SendingChain, secret_box: SecretBox
) -> None:
    chain = sending_chain
    with unit_of_work(chain.factory.sessions) as session:
        create_endpoint(
            session,
            chain.factory.tenant_id,
            "https://hooks.example/ops",
            ["custody.*"],
            secrets=secret_box,
            allow_private_targets=False,
        )
    watcher, wallet, to, withdrawal = mine_a_withdrawal(chain, blocks=CONFIRMATIONS)
    confirmed = chain.withdrawal(withdrawal)
    assert confirmed["status"] == "confirmed"
    posted = account(chain, wallet, chain.live.native)

    # Every block from the withdrawal's on is replaced: its transaction is gone.
    replace_blocks(chain, CONFIRMATIONS)
    settle(watcher)
    assert chain.dev.devnet.balance(to) == 0
    gone = chain.withdrawal(withdrawal)
    assert (gone["status"], gone["block_number"]) == ("confirmed", None)
    with unit_of_work(chain.factory.sessions) as session:
        alerts = session.execute(
            text(
                "SELECT payload FROM outbox WHERE event_type = 'custody.alert' AND tenant_id = :t"
            ),
            {"t": chain.factory.tenant_id},
        ).scalars()
        kinds = [(a["kind"], a["withdrawal_id"]) for a in alerts]
    assert kinds == [("settled_withdrawal_reorged", withdrawal)]

    chain.broadcaster().run()  # sends the stored transaction again
    chain.dev.mine()
    settle(watcher)

    again = chain.withdrawal(withdrawal)
    assert again["status"] == "confirmed" and again["block_number"] is not None
    assert chain.dev.devnet.balance(to) == ETH // 2
    assert len(chain.attempts(withdrawal)) == 1
    assert account(chain, wallet, chain.live.native) == posted  # posted once, not again
    assert ledger_is_sound(chain)
    assert holdings_differences(chain) == [0, 0]


def test_a_hot_wallet_transaction_of_no_withdrawal_raises_an_alert(
    sending_chain: SendingChain, caplog: pytest.LogCaptureFixture
) -> None:
    chain = sending_chain
    watcher = chain.live.watcher()
    settle(watcher)
    wallet = chain.factory.wallet()
    chain.factory.fund(wallet, chain.live.native, ETH)
    chain.fund_hot_wallet(ETH)
    chain.request(wallet, chain.live.native, "0.1", outside())
    chain.broadcaster().run()  # the hot wallet's nonce row exists from now on
    chain.dev.mine()
    settle(watcher)
    fees = quote_fees(chain.dev.rpc, FeePolicy(max_fee_per_gas_cap=500 * 10**9))
    assert isinstance(fees, FeeQuote)
    stranger = native_transfer(
        chain_id=chain.live.config.chain_id,
        nonce=chain.dev.devnet.nonce(chain.hot.address),
        to=outside(),
        amount=1,
        fees=fees,
    )
    tx_hash = chain.dev.devnet.send_raw_transaction(chain.hot.signer.sign(stranger).raw_transaction)
    chain.dev.mine()

    with caplog.at_level(logging.CRITICAL, logger="wallet.withdrawals"):
        settle(watcher)

    assert any("ALERT" in r.message and tx_hash in r.message for r in caplog.records)
