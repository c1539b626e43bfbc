"""A local Anvil devnet for tests and demos: process control, dev accounts, contracts, helpers."""

from __future__ import annotations

import atexit
import ctypes
import functools
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from chains.abi import encode_call
from chains.contracts import load_artifact
from chains.model import normalize_address
from chains.rpc import NodeUnreachable, RpcClient
from chains.tracking import native_balance, token_balance

DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEFAULT_CHAIN_ID = 31337
ANVIL_ENV_VAR = "ANVIL_BIN"

_PLATFORM_PACKAGES = {
    ("linux", "x86_64"): "anvil-linux-amd64",
    ("linux", "aarch64"): "anvil-linux-arm64",
    ("darwin", "x86_64"): "anvil-darwin-amd64",
    ("darwin", "arm64"): "anvil-darwin-arm64",
}
_PR_SET_PDEATHSIG = 1


class DevnetError(RuntimeError):
    """Anvil could not be found, did not start, or a devnet helper failed."""


@dataclass(frozen=True, slots=True)
class DevAccount:
    """A funded Anvil dev account derived from DEV_MNEMONIC; never use its key on a real chain."""

    address: str
    private_key: str


@cache
def dev_accounts(count: int = 10) -> tuple[DevAccount, ...]:
    """The first `count` accounts Anvil funds by default (m/44'/60'/0'/0/i of DEV_MNEMONIC)."""
    from eth_account import Account  # noqa: PLC0415 - slow import, needed only here

    Account.enable_unaudited_hdwallet_features()
    accounts = []
    for i in range(count):
        acct = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        accounts.append(DevAccount(address=acct.address.lower(), private_key="0x" + acct.key.hex()))
    return tuple(accounts)


# Below Linux's ephemeral range (32768-60999 by default): the kernel never hands these out to
# outgoing connections or to a bind on port 0, so a port found here stays free until used,
# and processes looking at once (parallel test workers) rarely pick the same one.
_LISTEN_PORTS = range(20000, 32768)


# Ports this process has handed out: a port is found free again until whoever asked for it
# binds it, so two calls in a row (an API's and a node's port) could get the same one.
_HANDED_OUT: set[int] = set()


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (another process may still take it), never one
    this process was handed before."""
    for _ in range(100):
        port = random.choice(_LISTEN_PORTS)  # noqa: S311 - spreading, not secrecy
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            _HANDED_OUT.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        found: int = s.getsockname()[1]
        return found


def anvil_binary(search_from: Path | None = None) -> Path:
    """Locate the anvil executable: $ANVIL_BIN, then node_modules, then PATH.

    node_modules/.bin/anvil is the npm package's node shim; the native binary it would spawn is
    preferred so that signals reach Anvil itself and no node process sits in between.
    """
    override = os.environ.get(ANVIL_ENV_VAR)
    if override:
        return Path(override)
    package = _PLATFORM_PACKAGES.get((sys.platform, os.uname().machine), "unsupported-platform")
    for start in (search_from or Path.cwd(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            modules = folder / "node_modules"
            native = modules / "@foundry-rs" / package / "bin" / "anvil"
            if native.is_file():
                return native
            shim = modules / ".bin" / "anvil"
            if shim.exists():
                return shim
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise DevnetError("anvil not found: run `npm ci` or set $ANVIL_BIN")


def stop_with_parent(signum: signal.Signals, parent: int) -> None:
    """Have the kernel send `signum` to this process when the thread that started it dies, so
    that a parent killed outright leaves no child behind. Called in a child between fork and
    exec (the setting is kept across exec, and cleared by a change of user). `parent` is the
    pid of the process that forked this one: if it died before the setting took hold, the
    signal is sent at once. Linux only."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signum)
        if os.getppid() != parent:
            os.kill(os.getpid(), signum)


class Devnet:
    """One Anvil process on 127.0.0.1.

    Mining is manual by default (`mine` makes blocks); pass `automine=True` to mine each
    transaction on arrival or `block_time` for interval mining. With `dump_state`, Anvil writes its
    state there on `stop`; `load_state` starts from such a file.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        chain_id: int = DEFAULT_CHAIN_ID,
        automine: bool = False,
        block_time: float | None = None,
        account_count: int = 10,
        dump_state: Path | None = None,
        load_state: Path | None = None,
        extra_args: Sequence[str] = (),
        anvil_path: Path | None = None,
        startup_timeout: float = 15.0,
    ) -> None:
        self.chain_id = chain_id
        self.automine = automine
        self.block_time = block_time
        self.account_count = account_count
        self.dump_state = dump_state
        self.load_state = load_state
        self.extra_args = tuple(extra_args)
        self.anvil_path = anvil_path
        self.startup_timeout = startup_timeout
        self._fixed_port = port
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._rpc: RpcClient | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise DevnetError("devnet is not running")
        return self._port

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def rpc(self) -> RpcClient:
        if self._rpc is None:
            raise DevnetError("devnet is not running")
        return self._rpc

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Devnet:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start Anvil and return once it answers eth_chainId with the configured chain id."""
        if self._process is not None:
            raise DevnetError("devnet already started")
        attempts = 1 if self._fixed_port is not None else 3
        for attempt in range(attempts):
            port = self._fixed_port if self._fixed_port is not None else find_free_port()
            try:
                self._launch(port)
                return
            except DevnetError:
                self._kill()
                if attempt == attempts - 1:
                    raise

    def _launch(self, port: int) -> None:
        args = [str(self.anvil_path or anvil_binary()), "--host", "127.0.0.1"]
        args += ["--port", str(port), "--chain-id", str(self.chain_id)]
        args += ["--accounts", str(self.account_count), "--mnemonic", DEV_MNEMONIC]
        if self.block_time is not None:
            args += ["--block-time", str(self.block_time)]
        elif not self.automine:
            args.append("--no-mining")
        if self.dump_state is not None:
            args += ["--dump-state", str(self.dump_state)]
        if self.load_state is not None:
            args += ["--load-state", str(self.load_state)]
        args += self.extra_args
        self._log = tempfile.TemporaryFile(prefix="anvil-")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=functools.partial(stop_with_parent, signal.SIGTERM, os.getpid()),  # noqa: PLW1509
        )
        self._port = port
        self._rpc = RpcClient(self.rpc_url, timeout=60.0, connect_timeout=1.0)
        atexit.register(self._kill)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._process.poll() is not None:
                raise DevnetError(f"anvil exited with {self._process.returncode}: {self._tail()}")
            try:
                chain_id = int(self._rpc.call("eth_chainId"), 16)
                break
            except NodeUnreachable:
                if time.monotonic() > deadline:
                    raise DevnetError(f"anvil did not answer in time: {self._tail()}") from None
                time.sleep(0.02)
        if chain_id != self.chain_id:
            raise DevnetError(f"port {port} answers chain id {chain_id}, not {self.chain_id}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Anvil (SIGTERM, so it can write `dump_state`), then SIGKILL after `timeout`."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._cleanup()

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        atexit.unregister(self._kill)
        if self._rpc is not None:
            self._rpc.close()
        if self._log is not None:
            self._log.close()
        self._process = self._rpc = self._log = None
        self._port = None

    def _tail(self, limit: int = 2000) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-limit:]

    # --- chain control -------------------------------------------------------------------

    def mine(self, blocks: int = 1) -> int:
        """Mine `blocks` blocks (including pending transactions) and return the new head number."""
        self.rpc.call("anvil_mine", hex(blocks))
        return self.block_number()

    def block_number(self) -> int:
        return int(self.rpc.call("eth_blockNumber"), 16)

    def reorg(self, depth: int, txs: Sequence[tuple[dict[str, Any], int]] = ()) -> None:
        """Replace the last `depth` blocks with `depth` new ones (Anvil's `anvil_reorg`).

        `txs` are (transaction request, block offset) pairs mined into the new blocks, offset 0
        being the first block after the common ancestor.
        """
        self.rpc.call("anvil_reorg", depth, [[tx, offset] for tx, offset in txs])

    def set_balance(self, address: str, wei: int) -> None:
        self.rpc.call("anvil_setBalance", normalize_address(address), hex(wei))

    def balance(self, address: str) -> int:
        return native_balance(self.rpc, address)

    # --- transactions from unlocked dev accounts -----------------------------------------

    def send_transaction(
        self,
        sender: str,
        to: str | None,
        *,
        value: int = 0,
        data: str = "0x",
        gas: int | None = None,
    ) -> str:
        """Submit a transaction from an unlocked dev account and return its hash (not mined)."""
        tx: dict[str, Any] = {"from": normalize_address(sender), "value": hex(value), "data": data}
        if to is not None:
            tx["to"] = normalize_address(to)
        if gas is not None:
            tx["gas"] = hex(gas)
        tx_hash: str = self.rpc.call("eth_sendTransaction", tx)
        return tx_hash

    def send_raw_transaction(self, raw: str | bytes) -> str:
        """Submit a signed transaction (e.g. eth-account's `raw_transaction`); return its hash."""
        payload = raw if isinstance(raw, str) else "0x" + raw.hex()
        tx_hash: str = self.rpc.call("eth_sendRawTransaction", payload)
        return tx_hash

    def nonce(self, address: str, block: str = "pending") -> int:
        return int(self.rpc.call("eth_getTransactionCount", normalize_address(address), block), 16)

    def receipt(self, tx_hash: str, *, within: float = 0.0) -> dict[str, Any]:
        """The receipt of a mined transaction, waiting up to `within` seconds for it to be
        mined; DevnetError if it is not mined by then."""
        deadline = time.monotonic() + within
        while True:
            receipt: dict[str, Any] | None = self.rpc.call("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                return receipt
            if time.monotonic() >= deadline:
                raise DevnetError(f"transaction {tx_hash} is not mined")
            time.sleep(0.05)

    def send_eth(self, sender: str, to: str, wei: int, *, gas: int | None = None) -> str:
        return self.send_transaction(sender, to, value=wei, gas=gas)

    def deploy(self, contract: str, sender: str, constructor_data: str = "") -> str:
        """Deploy a contract from artifacts.json, mining one block, and return its address."""
        bytecode = load_artifact(contract).bytecode + constructor_data.removeprefix("0x")
        tx_hash = self.send_transaction(sender, None, data=bytecode)
        if not self.automine:
            self.mine()
        # With interval mining, Anvil's own block may be under way and take the transaction.
        receipt = self.receipt(tx_hash, within=10.0)
        if receipt["status"] != "0x1" or not receipt.get("contractAddress"):
            raise DevnetError(f"deploying {contract} failed: {receipt}")
        address: str = receipt["contractAddress"]
        return address.lower()

    def eth_call(self, to: str, data: str) -> str:
        result: str = self.rpc.call(
            "eth_call", {"to": normalize_address(to), "data": data}, "latest"
        )
        return result

    # --- TestUSD and Forwarder -----------------------------------------------------------

    def mint_tokens(self, token: str, owner: str, to: str, amount: int) -> str:
        """TestUSD.mint(to, amount), sent by the token's owner (its deployer)."""
        return self.send_transaction(
            owner, token, data=encode_call("mint(address,uint256)", to, amount)
        )

    def transfer_tokens(
        self, token: str, sender: str, to: str, amount: int, *, gas: int | None = None
    ) -> str:
        """ERC-20 transfer(to, amount) from `sender`; pass `gas` to submit one that will revert."""
        data = encode_call("transfer(address,uint256)", to, amount)
        return self.send_transaction(sender, token, data=data, gas=gas)

    def token_balance(self, token: str, holder: str) -> int:
        return token_balance(self.rpc, token, holder)

    def forward_eth(self, forwarder: str, sender: str, to: str, wei: int) -> str:
        """Forwarder.forward(to) with `wei`: ETH reaches `to` through an internal call."""
        data = encode_call("forward(address)", to)
        return self.send_transaction(sender, forwarder, value=wei, data=data)

    def forward_eth_in_reverted_call(self, forwarder: str, sender: str, to: str, wei: int) -> str:
        """A successful transaction whose internal call to `to` is reverted: nothing arrives."""
        data = encode_call("forwardInRevertedCall(address)", to)
        return self.send_transaction(sender, forwarder, value=wei, data=data, gas=200_000)


def deploy_test_usd(devnet: Devnet, deployer: str) -> str:
    """Deploy TestUSD (6 decimals, owner = `deployer`) and return its address."""
    return devnet.deploy("TestUSD", deployer)


def deploy_forwarder(devnet: Devnet, deployer: str) -> str:
    """Deploy the Forwarder contract and return its address."""
    return devnet.deploy("Forwarder", deployer)


@dataclass(frozen=True, slots=True)
class DevChain:
    """A running devnet with TestUSD and Forwarder deployed, as test fixtures hand it out."""

    devnet: Devnet
    chain_id: int
    token_address: str
    forwarder_address: str
    accounts: tuple[DevAccount, ...]

    @property
    def rpc_url(self) -> str:
        return self.devnet.rpc_url

    @property
    def rpc(self) -> RpcClient:
        return self.devnet.rpc

    @property
    def deployer(self) -> DevAccount:
        return self.accounts[0]

    def mine(self, blocks: int = 1) -> int:
        return self.devnet.mine(blocks)

    def send_eth(self, sender: str, to: str, wei: int, *, gas: int | None = None) -> str:
        return self.devnet.send_eth(sender, to, wei, gas=gas)

    def send_tokens(self, sender: str, to: str, amount: int, *, gas: int | None = None) -> str:
        """TestUSD transfer from a dev account (each starts with 1,000,000 USDC)."""
        return self.devnet.transfer_tokens(self.token_address, sender, to, amount, gas=gas)

    def mint_tokens(self, to: str, amount: int) -> str:
        return self.devnet.mint_tokens(self.token_address, self.deployer.address, to, amount)

    def forward_eth(self, sender: str, to: str, wei: int) -> str:
        return self.devnet.forward_eth(self.forwarder_address, sender, to, wei)


INITIAL_TOKEN_BALANCE = 1_000_000 * 10**6


def start_dev_chain(
    *,
    chain_id: int = DEFAULT_CHAIN_ID,
    port: int | None = None,
    automine: bool = False,
    block_time: float | None = None,
    extra_args: Sequence[str] = (),
) -> DevChain:
    """Start Anvil, deploy TestUSD and Forwarder, give every dev account 1,000,000 USDC.

    Mining is manual unless `automine` or `block_time` says otherwise (as for `Devnet`).
    """
    devnet = Devnet(
        chain_id=chain_id,
        port=port,
        automine=automine,
        block_time=block_time,
        extra_args=extra_args,
    )
    devnet.start()
    try:
        accounts = dev_accounts(devnet.account_count)
        deployer = accounts[0].address
        token = deploy_test_usd(devnet, deployer)
        forwarder = deploy_forwarder(devnet, deployer)
        mints = [
            devnet.mint_tokens(token, deployer, a.address, INITIAL_TOKEN_BALANCE) for a in accounts
        ]
        devnet.mine()
        for tx_hash in mints:
            if devnet.receipt(tx_hash)["status"] != "0x1":
                raise DevnetError(f"minting TestUSD failed in {tx_hash}")
    except BaseException:
        devnet.stop()
        raise
    return DevChain(devnet, chain_id, token, forwarder, accounts)
