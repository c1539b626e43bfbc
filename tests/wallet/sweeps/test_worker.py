"""The sweep task on a real Celery worker and beat on Redis: a USDC deposit swept to the hot
wallet, its transfer mined only after the gas top-up had the chain's confirmations."""

import json
from pathlib import Path

from chains import token_balance
from tests.wallet.deposits.conftest import CONFIRMATIONS, TEST_MNEMONIC, write_catalogue_file
from tests.wallet.sweeps.conftest import SweepingChain
from tests.wallet.withdrawals.conftest import ETH, USDC
from tests.webhook_fixtures import WEBHOOK_JOBS_OFF, CeleryProcesses, wait_until


def test_the_beat_sweeps_a_usdc_deposit_after_its_top_up(
    sweeping_chain: SweepingChain, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    chain = sweeping_chain
    live = chain.chain.live
    chain.fund_hot_wallet(wei=5 * ETH)
    address = chain.deposit(chain.chain.factory.wallet(), tokens=250 * USDC)
    celery = CeleryProcesses(database_url, redis_url, tmp_path)
    celery.env.update(
        {
            **WEBHOOK_JOBS_OFF,
            "WALLET_ASSETS_FILE": str(write_catalogue_file(live, tmp_path / "assets.toml")),
            "WALLET_DEV_MNEMONIC": TEST_MNEMONIC,
            "WALLET_SWEEP_POLICIES": json.dumps({live.token: {"threshold": "10"}}),
            "WALLET_SWEEP_INTERVAL": "0.3",
        }
    )
    celery.start()
    try:

        def mined_and_confirmed() -> bool:
            chain.mine()
            sweeps = chain.sweeps()
            return bool(sweeps) and sweeps[0]["status"] == "sweep_confirmed"

        wait_until(mined_and_confirmed, timeout=60.0, interval=0.3)
    finally:
        celery.stop()

    (sweep,) = chain.sweeps()
    top_up, transfer = chain.transactions(sweep["id"])
    assert (top_up["phase"], transfer["phase"]) == ("gas", "transfer")
    assert transfer["block_number"] >= top_up["block_number"] + CONFIRMATIONS
    token = chain.chain.catalogue.asset(live.token).contract_address
    assert token is not None
    assert token_balance(chain.chain.dev.rpc, token, chain.custody.hot_address) == 250 * USDC
    assert token_balance(chain.chain.dev.rpc, token, address) == 0
    assert [h.difference for h in chain.holdings()] == [0, 0]
    assert "sweeps started" in celery.log("worker")
