"""Sweeps on a devnet: ETH swept to the hot wallet; USDC swept only after its gas top-up is
final; the hot wallet's excess sent cold; user balances never touched; holdings reconciled."""

import logging
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from chains import (
    ETH_TRANSFER_GAS,
    RpcClient,
    TransactionRequest,
    account_nonces,
    native_balance,
    token_balance,
)
from tests.api_fixtures import free_port
from tests.wallet.deposits.conftest import CONFIRMATIONS, TEST_MNEMONIC, write_catalogue_file
from tests.wallet.sweeps.conftest import COLD, SweepingChain
from tests.wallet.withdrawals.conftest import ETH, USDC
from wallet.cli import app
from wallet.database import unit_of_work
from wallet.withdrawals.liquidity import hot_wallet_liquidity


def use_cli(
    chain: SweepingChain, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `wallet` command on the test database, the chain's catalogue and the test seed."""
    monkeypatch.setenv("WALLET_DATABASE_URL", database_url)
    monkeypatch.setenv("WALLET_DEV_MNEMONIC", TEST_MNEMONIC)
    catalogue = write_catalogue_file(chain.chain.live, tmp_path / "assets.toml")
    monkeypatch.setenv("WALLET_ASSETS_FILE", str(catalogue))


def test_eth_is_swept_to_the_hot_wallet(sweeping_chain: SweepingChain) -> None:
    chain = sweeping_chain
    wallet = chain.chain.factory.wallet()
    address = chain.deposit(wallet, wei=2 * ETH)
    rpc = chain.chain.dev.rpc

    report = chain.run()
    (sweep,) = chain.sweeps()
    assert report.started == [sweep["id"]]
    assert sweep["status"] == "sweep_sent"
    chain.mine(CONFIRMATIONS)
    assert chain.run().confirmed == [sweep["id"]]

    (sweep,) = chain.sweeps()
    (tx,) = chain.transactions(sweep["id"])
    assert (sweep["status"], tx["phase"], tx["sender"]) == ("sweep_confirmed", "transfer", address)
    assert native_balance(rpc, chain.custody.hot_address) == sweep["amount"]
    assert native_balance(rpc, address) == 2 * ETH - sweep["amount"] - tx["fee"]
    assert chain.chain.live.balance(wallet, chain.native).posted == 2 * ETH
    assert chain.posted("fees", chain.native) == -tx["fee"]
    assert chain.posted("chain", chain.native) == -2 * ETH + tx["fee"]
    assert [h.difference for h in chain.holdings()] == [0, 0]
    assert chain.run().started == []  # the residue is below the threshold


def test_usdc_is_swept_only_after_its_gas_top_up_is_final(
    sweeping_chain: SweepingChain,
    caplog: pytest.LogCaptureFixture,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain = sweeping_chain
    rpc = chain.chain.dev.rpc
    chain.fund_hot_wallet(wei=5 * ETH)
    wallet = chain.chain.factory.wallet()
    address = chain.deposit(wallet, tokens=500 * USDC)

    chain.run()
    (sweep,) = chain.sweeps()
    (top_up,) = chain.transactions(sweep["id"])
    assert (sweep["status"], top_up["phase"]) == ("gas_requested", "gas")
    assert top_up["sender"] == chain.custody.hot_address
    use_cli(chain, database_url, tmp_path, monkeypatch)
    status = CliRunner().invoke(app, ["custody", "status"])
    assert status.exit_code == 0, status.output
    name = chain.chain.live.name
    assert f"{name} {chain.token}: hot 0.000000" in status.output
    assert f"    unswept {address} 500.000000" in status.output
    assert f"    top-up in flight {sweep['id']} {address} for 500.000000" in status.output
    chain.mine()  # mined, not yet final
    chain.run()
    assert chain.sweeps()[0]["status"] == "gas_requested"
    assert account_nonces(rpc, address).pending == 0  # nothing sent from the address
    assert native_balance(rpc, address) > 0

    chain.mine(CONFIRMATIONS - 1)
    chain.run()
    sweep = chain.sweeps()[0]
    top_up, transfer = chain.transactions(sweep["id"])
    assert sweep["status"] == "sweep_sent"
    assert top_up["succeeded"] is True
    assert transfer["sender"] == address
    assert transfer["signed_at"] > top_up["signed_at"]
    chain.mine(CONFIRMATIONS)
    assert chain.run().confirmed == [sweep["id"]]

    sweep = chain.sweeps()[0]
    top_up, transfer = chain.transactions(sweep["id"])
    assert transfer["block_number"] >= top_up["block_number"] + CONFIRMATIONS
    token = chain.chain.catalogue.asset(chain.token).contract_address
    assert token is not None
    assert token_balance(rpc, token, chain.custody.hot_address) == 500 * USDC
    assert token_balance(rpc, token, address) == 0
    assert sweep["network_fee"] == top_up["fee"] + transfer["fee"]
    assert chain.chain.live.balance(wallet, chain.token).posted == 500 * USDC
    assert chain.chain.live.balance(wallet, chain.native).posted == 0  # the top-up is no deposit
    assert chain.posted("fees", chain.native) == -sweep["network_fee"]
    assert [h.difference for h in chain.holdings()] == [0, 0]
    assert not [r for r in caplog.records if r.levelno >= logging.CRITICAL]


def one_sweep_started(
    chain: SweepingChain, *, hot_wei: int, wei: int = 0, tokens: int = 0
) -> tuple[str, dict[str, Any]]:
    """A funded hot wallet, a deposit, and the sweep a run starts: its address and job."""
    chain.fund_hot_wallet(wei=hot_wei)
    address = chain.deposit(chain.chain.factory.wallet(), wei=wei, tokens=tokens)
    chain.run()
    (sweep,) = chain.sweeps()
    return address, sweep


def bumped(chain: SweepingChain, sweep_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run that waits for nothing replaces the job's transaction: the two, each in the same
    phase, from the same sender and nonce, the fee cap raised by 12.5 % at least."""
    assert chain.run(bump_after=timedelta(0)).bumped == [sweep_id]
    first, second = chain.transactions(sweep_id)
    assert [first[k] for k in ("phase", "sender", "nonce")] == [
        second[k] for k in ("phase", "sender", "nonce")
    ]
    assert second["max_fee_per_gas"] >= first["max_fee_per_gas"] * 9 / 8
    return first, second


def test_a_stuck_native_sweep_is_replaced_sending_less_and_mined_once(
    sweeping_chain: SweepingChain,
) -> None:
    chain = sweeping_chain
    rpc = chain.chain.dev.rpc
    address, sweep = one_sweep_started(chain, hot_wei=ETH, wei=2 * ETH)

    first, second = bumped(chain, sweep["id"])

    assert first["sender"] == address
    chain.mine(CONFIRMATIONS)
    assert chain.run().confirmed == [sweep["id"]]
    assert rpc.call("eth_getTransactionReceipt", first["tx_hash"]) is None
    (sweep,) = chain.sweeps()
    first, second = chain.transactions(sweep["id"])
    assert (first["block_number"], second["succeeded"]) == (None, True)
    assert native_balance(rpc, chain.custody.hot_address) == ETH + sweep["amount"]
    assert native_balance(rpc, address) == 2 * ETH - sweep["amount"] - second["fee"]
    assert chain.posted("fees", chain.native) == -second["fee"]
    assert [h.difference for h in chain.holdings()] == [0, 0]


def test_a_stuck_top_up_is_replaced_and_a_transfer_its_address_cannot_bump_gets_gas_first(
    sweeping_chain: SweepingChain, caplog: pytest.LogCaptureFixture
) -> None:
    chain = sweeping_chain
    rpc = chain.chain.dev.rpc
    address, sweep = one_sweep_started(chain, hot_wei=5 * ETH, tokens=500 * USDC)

    first, second = bumped(chain, sweep["id"])

    assert (first["phase"], first["sender"]) == ("gas", chain.custody.hot_address)
    chain.mine(CONFIRMATIONS)
    chain.run()  # the replacement is final: the transfer is signed
    assert account_nonces(rpc, chain.custody.hot_address).latest == second["nonce"] + 1
    assert rpc.call("eth_getTransactionReceipt", first["tx_hash"]) is None

    # An address holding no more gas than its transfer's fee cap cannot pay a bump: the hot
    # wallet sends it what the higher fee lacks, and once that is final the transfer is
    # replaced (without it, the bump would be refused as underpriced or unfunded for ever).
    _, _, transfer = chain.transactions(sweep["id"])
    fee_cap = int(transfer["gas"] * transfer["max_fee_per_gas"])
    spare = native_balance(rpc, address) - fee_cap
    rpc.call("anvil_setBalance", address, hex(fee_cap))
    assert chain.run(bump_after=timedelta(0)).refuelled == [sweep["id"]]
    assert f"{address} lacks" in caplog.text
    refuel = chain.transactions(sweep["id"])[-1]
    assert (refuel["phase"], refuel["sender"]) == ("gas", chain.custody.hot_address)
    assert chain.sweeps()[0]["status"] == "refuel_requested"
    assert chain.run().bumped == []  # the transfer waits for its gas to be final
    # Blocks with room for the refuel and not for the stuck transfer.
    limit = rpc.call("eth_getBlockByNumber", "latest", False)["gasLimit"]
    rpc.call("anvil_setBlockGasLimit", hex(int(transfer["gas"]) - 1))
    chain.mine(CONFIRMATIONS)
    rpc.call("anvil_setBlockGasLimit", limit)
    assert not chain.run().confirmed  # the refuel is final: the job is back to its transfer
    assert chain.sweeps()[0]["status"] == "sweep_sent"
    shortfall = TransactionRequest.of_signed(bytes(refuel["raw_transaction"])).value
    assert native_balance(rpc, address) == fee_cap + shortfall
    assert chain.run(bump_after=timedelta(0)).bumped == [sweep["id"]]
    chain.mine(CONFIRMATIONS)
    assert chain.run().confirmed == [sweep["id"]]
    assert rpc.call("eth_getTransactionReceipt", transfer["tx_hash"]) is None
    sweep = chain.sweeps()[0]  # the next, a cold transfer of the USDC above the ceiling
    top_up, refuel, replacement = (
        t for t in chain.transactions(sweep["id"]) if t["block_number"] is not None
    )
    assert [t["phase"] for t in (top_up, refuel, replacement)] == ["gas", "gas", "transfer"]
    assert sweep["network_fee"] == top_up["fee"] + refuel["fee"] + replacement["fee"]
    assert chain.posted("fees", chain.native) == -sweep["network_fee"]
    assert [h.difference for h in chain.holdings()] == [-spare, 0]


def test_gas_the_hot_wallet_cannot_pay_beside_its_withdrawals_in_flight_waits_taking_no_nonce(
    sweeping_chain: SweepingChain,
) -> None:
    chain = sweeping_chain
    sending, rpc, hot = chain.chain, chain.chain.dev.rpc, chain.custody.hot_address
    address = chain.deposit(sending.factory.wallet(), tokens=500 * USDC)

    # An empty hot wallet: the address waits; no job, no nonce.
    report = chain.run()
    assert (report.started, report.waiting) == ([], [address])
    assert chain.sweeps() == []

    # Funds, all of them committed to a withdrawal signed and not yet mined.
    payer = sending.factory.wallet()
    sending.factory.fund(payer, chain.native, ETH)
    chain.fund_hot_wallet(wei=ETH)
    withdrawal = sending.request(payer, chain.native, "0.5", "0x" + secrets.token_hex(20))
    assert sending.broadcaster().run().sent == [withdrawal]
    (attempt,) = sending.attempts(withdrawal)
    committed = ETH // 2 + ETH_TRANSFER_GAS * int(attempt["max_fee_per_gas"])
    rpc.call("anvil_setBalance", hot, hex(committed))
    assert chain.run().waiting == [address]
    assert chain.sweeps() == []

    # Mined, and funds enough: the top-up takes the next nonce, right after the withdrawal's.
    chain.mine()
    chain.fund_hot_wallet(wei=ETH)
    report = chain.run()
    (sweep,) = chain.sweeps()
    assert (report.started, report.waiting) == ([sweep["id"]], [])
    (top_up,) = chain.transactions(sweep["id"])
    assert (top_up["sender"], top_up["nonce"]) == (hot, 1)
    # The withdrawals see the top-up in flight: the hot wallet's balance less its cost.
    with unit_of_work(sending.factory.sessions) as session:
        liquidity = hot_wallet_liquidity(
            session, sending.catalogue, chain.chain.live.name, hot, rpc
        )
    top_up_cost = TransactionRequest.of_signed(bytes(top_up["raw_transaction"])).max_cost()
    assert liquidity.native == native_balance(rpc, hot) - top_up_cost
    chain.mine()
    assert account_nonces(rpc, hot).latest == 2


def test_the_hot_wallets_excess_above_the_ceiling_goes_cold(sweeping_chain: SweepingChain) -> None:
    chain = sweeping_chain
    rpc = chain.chain.dev.rpc
    chain.fund_hot_wallet(wei=5 * ETH, tokens=100 * USDC)

    report = chain.run()
    (cold,) = chain.sweeps()
    assert report.cold == [cold["id"]]
    assert (cold["kind"], cold["asset"], cold["amount"]) == ("cold", chain.token, 60 * USDC)
    assert cold["destination"] == COLD
    chain.mine(CONFIRMATIONS)
    assert chain.run().confirmed == [cold["id"]]

    token = chain.chain.catalogue.asset(chain.token).contract_address
    assert token is not None
    assert token_balance(rpc, token, COLD) == 60 * USDC
    assert token_balance(rpc, token, chain.custody.hot_address) == 40 * USDC
    assert chain.posted("cold", chain.token) == -60 * USDC
    assert chain.posted("chain", chain.token) == -40 * USDC
    assert [h.difference for h in chain.holdings()] == [0, 0]
    assert chain.run().cold == []


def test_reconcile_finds_a_planted_difference(
    sweeping_chain: SweepingChain,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain = sweeping_chain
    wallet = chain.chain.factory.wallet()
    address = chain.deposit(wallet, wei=ETH, tokens=20 * USDC)
    for _ in range(3):  # the token (gas already there), then the ether, one job at a time
        chain.run()
        chain.mine(CONFIRMATIONS)
    assert [s["status"] for s in chain.sweeps()] == ["sweep_confirmed"] * 2
    assert [h.difference for h in chain.holdings()] == [0, 0]
    use_cli(chain, database_url, tmp_path, monkeypatch)
    name = chain.chain.live.name

    clean = CliRunner().invoke(app, ["reconcile"])
    assert f"ok   {name} {chain.native} holdings: on chain" in clean.output
    assert f"ok   {name} {chain.token} holdings: on chain" in clean.output

    chain.chain.dev.devnet.set_balance(address, chain.chain.dev.devnet.balance(address) + ETH)
    native, token = chain.holdings()
    assert (native.asset, native.difference, token.difference) == (chain.native, ETH, 0)
    planted = CliRunner().invoke(app, ["reconcile"])
    assert planted.exit_code == 1
    assert f"FAIL {name} {chain.native} holdings: on chain" in planted.output
    assert "differs by 1.000000000000000000" in planted.output
    assert f"ok   {name} {chain.token} holdings" in planted.output


def test_an_unreachable_node_is_unknown_never_zero(sweeping_chain: SweepingChain) -> None:
    chain = sweeping_chain
    chain.deposit(chain.chain.factory.wallet(), wei=ETH)
    with RpcClient(f"http://127.0.0.1:{free_port()}", timeout=1.0) as nobody:
        holdings = chain.holdings(nobody)
    assert [(h.on_chain, h.difference) for h in holdings] == [(None, None)] * 2
    assert [h.ledger for h in holdings] == [ETH, 0]


def test_an_operators_top_up_of_the_hot_wallet_is_booked_as_capital_once_when_final(
    sweeping_chain: SweepingChain,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain = sweeping_chain
    dev, hot, name = chain.chain.dev, chain.custody.hot_address, chain.chain.live.name
    operator = dev.accounts[1].address
    ether = dev.send_eth(operator, hot, 2 * ETH)
    tokens = dev.send_tokens(operator, hot, 30 * USDC)
    to_someone_else = dev.send_eth(operator, "0x" + secrets.token_hex(20), ETH)
    chain.mine()
    use_cli(chain, database_url, tmp_path, monkeypatch)

    def capital(tx_hash: str) -> Any:
        return CliRunner().invoke(app, ["custody", "capital", tx_hash, "--chain", name])

    early = capital(ether)
    assert early.exit_code == 1
    assert f"has 1 of the {CONFIRMATIONS} confirmations" in early.output
    chain.mine(CONFIRMATIONS)
    assert [h.difference for h in chain.holdings()] == [2 * ETH, 30 * USDC]

    booked = [capital(tx) for tx in (ether, tokens, ether)]
    assert [r.exit_code for r in booked] == [0, 0, 0]
    assert f"booked: 2.000000000000000000 {chain.native} as capital:{name}" in booked[0].output
    assert f"booked: 30.000000 {chain.token} as capital:{name}" in booked[1].output
    assert "booked before: 2.000000000000000000" in booked[2].output
    assert [h.difference for h in chain.holdings()] == [0, 0]
    assert chain.posted("capital", chain.native) == 2 * ETH

    elsewhere = capital(to_someone_else)
    assert elsewhere.exit_code == 1
    assert f"sent the hot wallet {hot} nothing" in elsewhere.output
    assert capital("0x" + "ab" * 32).exit_code == 1
