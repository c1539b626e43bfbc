"""Deposit address derivation speed: custody's cached-prefix derivation against eth-account.

Prints one JSON line. Run from the repository root: `.venv/bin/python bench/derivation.py`.
"""

import json
import time
from collections.abc import Callable

import repo_first  # noqa: F401 (first: the path to the service, see its docstring)
from eth_account import Account
from eth_account.hdaccount import key_from_seed

from custody import DepositKeyTree, MasterSeed, XpubAddressDeriver

MNEMONIC = "test test test test test test test test test test test junk"
REFERENCE_COUNT = 50
FAST_COUNT = 10_000
TARGET_MS = 1.0


def _ms_per_call(count: int, derive: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for index in range(count):
        derive(index)
    return (time.perf_counter() - start) * 1000 / count


def main() -> None:
    Account.enable_unaudited_hdwallet_features()
    seed = MasterSeed.from_mnemonic(MNEMONIC)

    def eth_account_address(index: int) -> str:
        return str(Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}").address)

    def eth_account_address_from_seed(index: int) -> str:
        key = key_from_seed(seed.secret, f"m/44'/60'/0'/0/{index}")
        return str(Account.from_key(key).address)

    setup_start = time.perf_counter()
    tree = DepositKeyTree(seed, account=0)
    setup_ms = (time.perf_counter() - setup_start) * 1000
    deriver = XpubAddressDeriver(tree.account_xpub)

    reference_ms = _ms_per_call(REFERENCE_COUNT, eth_account_address)
    reference_seed_ms = _ms_per_call(REFERENCE_COUNT, eth_account_address_from_seed)
    fast_ms = _ms_per_call(FAST_COUNT, tree.address)
    xpub_ms = _ms_per_call(FAST_COUNT, deriver.address)
    private_key_ms = _ms_per_call(FAST_COUNT, tree.private_key)

    assert tree.address(REFERENCE_COUNT - 1) == eth_account_address(REFERENCE_COUNT - 1)
    print(
        json.dumps(
            {
                "bench": "custody.derivation",
                "eth_account_ms_per_address": round(reference_ms, 4),
                "eth_account_from_seed_ms_per_address": round(reference_seed_ms, 4),
                "fast_ms_per_address": round(fast_ms, 4),
                "xpub_only_ms_per_address": round(xpub_ms, 4),
                "fast_ms_per_private_key": round(private_key_ms, 4),
                "tree_setup_ms": round(setup_ms, 3),
                "ratio": round(reference_ms / fast_ms, 1),
                "reference_addresses": REFERENCE_COUNT,
                "fast_addresses": FAST_COUNT,
                "target_ms": TARGET_MS,
                "meets_target": fast_ms <= TARGET_MS,
            }
        )
    )


if __name__ == "__main__":
    main()
