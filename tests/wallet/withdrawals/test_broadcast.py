"""The broadcaster on a fresh Anvil node: write-ahead signing, sending, liquidity, crash
recovery from the stored bytes, fee bumps and gap-free nonces."""

import secrets

import pytest

from chains import account_nonces
from tests.wallet.withdrawals.conftest import ETH, USDC, SendingChain
from wallet.database import unit_of_work
from wallet.withdrawals import tasks
from wallet.withdrawals.errors import NotCancellable
from wallet.withdrawals.service import cancel_withdrawal


def outside() -> str:
    return "0x" + secrets.token_hex(20)


def half_an_eth_out(chain: SendingChain) -> tuple[str, str]:
    """A withdrawal of 0.5 ETH from a funded wallet, the hot wallet funded; its id and
    destination."""
    wallet = chain.factory.wallet()
    chain.factory.fund(wallet, chain.live.native, ETH)
    chain.fund_hot_wallet(ETH)
    to = outside()
    return chain.request(wallet, chain.live.native, "0.5", to), to


class Crash(BaseException):
    """Stands for the process dying at that line: nothing after it runs."""


def test_eth_and_usdc_go_out_with_consecutive_nonces(sending_chain: SendingChain) -> None:
    chain = sending_chain
    wallet = chain.factory.wallet()
    chain.factory.fund(wallet, chain.live.native, 5 * ETH)
    chain.factory.fund(wallet, chain.live.token, 1000 * USDC)
    chain.fund_hot_wallet(10 * ETH, 500 * USDC)
    eth_to, usdc_to = outside(), outside()
    eth = chain.request(wallet, chain.live.native, "1.25", eth_to)
    usdc = chain.request(wallet, chain.live.token, "250", usdc_to)

    report = chain.broadcaster().run()

    assert (report.signed, report.sent) == ([eth, usdc], [eth, usdc])
    assert [chain.withdrawal(w)["status"] for w in (eth, usdc)] == ["broadcast", "broadcast"]
    assert [chain.withdrawal(w)["nonce"] for w in (eth, usdc)] == [0, 1]
    chain.dev.mine()
    assert chain.dev.devnet.balance(eth_to) == 125 * ETH // 100
    assert chain.dev.devnet.token_balance(chain.dev.token_address, usdc_to) == 250 * USDC
    for w in (eth, usdc):
        (attempt,) = chain.attempts(w)
        assert chain.dev.devnet.receipt(attempt["tx_hash"])["status"] == "0x1"
    assert account_nonces(chain.dev.rpc, chain.hot.address).latest == 2


def test_a_withdrawal_the_hot_wallet_cannot_cover_waits_and_goes_when_funds_arrive(
    sending_chain: SendingChain,
) -> None:
    chain = sending_chain
    wallet = chain.factory.wallet()
    chain.factory.fund(wallet, chain.live.token, 1000 * USDC)
    chain.fund_hot_wallet(ETH, 10 * USDC)
    withdrawal = chain.request(wallet, chain.live.token, "50", outside())

    first = chain.broadcaster().run()
    again = chain.broadcaster().run()

    assert first.waiting == [withdrawal] and not again
    assert chain.withdrawal(withdrawal)["status"] == "waiting_liquidity"
    assert chain.attempts(withdrawal) == []
    chain.fund_hot_wallet(tokens=100 * USDC)
    assert chain.broadcaster().run().sent == [withdrawal]
    assert chain.withdrawal(withdrawal)["status"] == "broadcast"


def test_one_the_hot_wallet_cannot_cover_waits_and_takes_no_nonce_from_those_signed_with_it(
    sending_chain: SendingChain,
) -> None:
    chain = sending_chain
    wallet = chain.factory.wallet()
    chain.factory.fund(wallet, chain.live.native, 10 * ETH)
    chain.fund_hot_wallet(ETH)
    amounts = ("0.1", "5", "0.1", "0.1", "0.1")
    made = [chain.request(wallet, chain.live.native, a, outside()) for a in amounts]

    # Read two at a time: the one waiting holds back none of the batches after it.
    report = chain.broadcaster(sign_batch=2).run()

    assert report.waiting == [made[1]] and report.sent == [made[0], *made[2:]]
    assert [chain.withdrawal(w)["nonce"] for w in made] == [0, None, 1, 2, 3]
    chain.dev.mine()
    assert account_nonces(chain.dev.rpc, chain.hot.address).latest == 4


def test_after_a_crash_between_signing_and_sending_the_stored_bytes_are_sent(
    sending_chain: SendingChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = sending_chain
    withdrawal, _ = half_an_eth_out(chain)

    def crash(*_: object) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(tasks, "send_raw_transactions", crash)
        with pytest.raises(Crash):
            chain.broadcaster().run()
    assert chain.withdrawal(withdrawal)["status"] == "signed"
    (stored,) = chain.attempts(withdrawal)

    report = chain.broadcaster().run()

    assert report.sent == [withdrawal] and report.signed == []
    assert [a["tx_hash"] for a in chain.attempts(withdrawal)] == [stored["tx_hash"]]
    chain.dev.mine()
    assert chain.dev.devnet.receipt(stored["tx_hash"])["status"] == "0x1"
    assert account_nonces(chain.dev.rpc, chain.hot.address).latest == 1


def test_after_a_crash_between_sending_and_recording_the_resend_is_already_known(
    sending_chain: SendingChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = sending_chain
    withdrawal, _ = half_an_eth_out(chain)
    real_send = tasks.send_raw_transactions

    def send_then_crash(*args: object) -> None:
        real_send(*args)  # type: ignore[arg-type]
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(tasks, "send_raw_transactions", send_then_crash)
        with pytest.raises(Crash):
            chain.broadcaster().run()
    assert chain.withdrawal(withdrawal)["status"] == "signed"

    assert chain.broadcaster().run().sent == [withdrawal]
    chain.dev.mine()
    assert len(chain.attempts(withdrawal)) == 1
    assert account_nonces(chain.dev.rpc, chain.hot.address).latest == 1


def test_a_transaction_not_mined_in_time_is_replaced_with_higher_fees_and_mined_once(
    sending_chain: SendingChain,
) -> None:
    chain = sending_chain
    withdrawal, to = half_an_eth_out(chain)
    assert chain.broadcaster().run().sent == [withdrawal]

    report = chain.broadcaster(bump_after=0).run()

    assert report.bumped == [withdrawal]
    first, second = chain.attempts(withdrawal)
    assert first["nonce"] == second["nonce"]
    assert second["max_fee_per_gas"] >= first["max_fee_per_gas"] * 9 / 8
    chain.dev.mine()
    assert chain.dev.devnet.receipt(second["tx_hash"])["status"] == "0x1"
    assert chain.dev.rpc.call("eth_getTransactionReceipt", first["tx_hash"]) is None
    assert chain.dev.devnet.balance(to) == ETH // 2


def test_500_withdrawals_go_out_in_one_run_with_500_nonces_without_a_gap(
    sending_chain: SendingChain,
) -> None:
    chain = sending_chain
    wallet = chain.factory.wallet()
    chain.factory.fund(wallet, chain.live.native, 10 * ETH)
    chain.fund_hot_wallet(10 * ETH)
    made = [chain.request(wallet, chain.live.native, "0.01", outside()) for _ in range(500)]

    report = chain.broadcaster().run()

    assert report.sent == made
    assert sorted(chain.withdrawal(w)["nonce"] for w in made) == list(range(500))
    chain.dev.mine()
    assert account_nonces(chain.dev.rpc, chain.hot.address).latest == 500


def test_a_signed_withdrawal_cannot_be_cancelled(sending_chain: SendingChain) -> None:
    chain = sending_chain
    withdrawal, _ = half_an_eth_out(chain)
    chain.broadcaster().run()
    tenant = chain.factory.tenant_id

    with unit_of_work(chain.factory.sessions) as session, pytest.raises(NotCancellable):
        cancel_withdrawal(session, tenant, withdrawal, chain.catalogue)

    assert chain.withdrawal(withdrawal)["status"] == "broadcast"
