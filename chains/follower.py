"""Reorg-aware chain follower: a step function over batched JSON-RPC, with no storage of its own.

The caller keeps the last K accepted headers (the known window) together with its cursor and
calls `ChainFollower.step` repeatedly. Each step either advances by up to `max_blocks` blocks,
each linked by parent hash to the one before, or reports a rollback to the newest block of the
window that is still canonical. The caller persists a step's result and the new window together.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

from chains.bloom import bloom_mask, may_contain
from chains.model import (
    TOP_LEVEL_INDEX,
    Advance,
    BlockHeader,
    NativeTransfer,
    ScannedBlock,
    SentTransaction,
    StepResult,
    TokenTransfer,
    WatchedAddresses,
    normalize_address,
    trace_index,
)
from chains.rpc import RpcCall, RpcClient, RpcError, RpcProtocolError
from chains.source import check_step, step_range, walk_back

# keccak256("Transfer(address,address,uint256)")
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"

_CALL_TRACER = {"tracer": "callTracer"}

# How many times the logs of a block whose bloom names a watched Transfer are fetched again,
# by the block's hash, before its receipts decide.
LOG_REFETCHES = 3


class TraceMode(enum.Enum):
    """How the follower finds internal ETH transfers, depending on what the node supports."""

    NONE = "none"
    """No traces: only top-level ETH transfers are found."""
    PARITY = "parity"
    """`trace_block` (Erigon, Nethermind, reth, Anvil)."""
    CALL_TRACER = "call_tracer"
    """`debug_traceBlockByHash` with geth's callTracer (geth, reth, Anvil)."""


class WrongChain(RuntimeError):
    """The node serves another chain than the follower was configured for."""


class IncompleteLogs(RpcError):
    """The node left out logs that the block holds (a lagging replica behind a load balancer
    answers `[]`); nothing of the step is usable, retry it."""


class ChainFollower:
    """Scans an EVM chain for ETH and ERC-20 transfers to watched addresses, block by block.

    `tokens` maps token contract address to the caller's asset code. `start_block` is where a
    step with an empty known window starts (None: the node's head at that step). With
    `chain_id`, the first step checks the node's eth_chainId and raises WrongChain on a
    mismatch. Identity indexes of internal transfers
    depend on the trace mode's frame numbering; keep one mode per chain.
    """

    def __init__(
        self,
        rpc: RpcClient,
        *,
        tokens: Mapping[str, str] | None = None,
        trace_mode: TraceMode = TraceMode.NONE,
        start_block: int | None = 0,
        chain_id: int | None = None,
    ) -> None:
        if start_block is not None and start_block < 0:
            raise ValueError("start_block must be >= 0")
        self._rpc = rpc
        self._tokens = {normalize_address(a): code for a, code in (tokens or {}).items()}
        self._token_list = sorted(self._tokens)
        topic = bytes.fromhex(TRANSFER_TOPIC[2:])
        self._transfer_masks = {
            token: bloom_mask(bytes.fromhex(token[2:]), topic) for token in self._token_list
        }
        self._trace_mode = trace_mode
        self._start_block = start_block
        self._chain_id = chain_id
        self._chain_checked = chain_id is None

    @property
    def trace_mode(self) -> TraceMode:
        return self._trace_mode

    def head(self) -> int:
        """The node's latest block number."""
        return _quantity(self._rpc.call("eth_blockNumber"))

    def step(
        self,
        known_window: Sequence[BlockHeader],
        watched: WatchedAddresses,
        max_blocks: int = 250,
        head: int | None = None,
        senders: WatchedAddresses | None = None,
    ) -> StepResult:
        """Fetch up to `max_blocks` blocks after the window's tip and scan them, or report a reorg.

        `known_window` is the caller's last accepted headers, oldest first, consecutive numbers;
        an empty window starts at `start_block` without a parent check. `head` is the node's
        latest block number as the caller read it; the step fetches no block above it, and
        reads it first when it is not given. Transactions sent by `senders` (hot wallets) are
        reported with their receipts' outcome. Raises `NodeUnreachable` when the node cannot be
        reached and other `RpcError`s on node errors; never returns an empty Advance for a
        failure.
        """
        check_step(known_window, max_blocks)
        self._check_chain()
        tip = known_window[-1] if known_window else None
        # Whether our tip is still canonical rides on the first round trip: the head's when the
        # step reads the head, else the blocks'.
        tip_check = (
            [] if tip is None else [RpcCall("eth_getBlockByNumber", (hex(tip.number), False))]
        )
        if head is None:
            replies = self._rpc.batch([RpcCall("eth_blockNumber"), *tip_check])
            head = _quantity(replies[0])
            if tip is not None and not _is_block(replies[1], tip):
                return self._walk_back(known_window, head)
            tip_check = []
        first, last = step_range(known_window, head, self._start_block, max_blocks)

        calls = [RpcCall("eth_getBlockByNumber", (hex(n), True)) for n in range(first, last + 1)]
        fetch_logs = bool(self._token_list) and last >= first
        if fetch_logs:
            log_filter = {
                "fromBlock": hex(first),
                "toBlock": hex(last),
                "address": self._token_list,
                "topics": [TRANSFER_TOPIC],
            }
            calls.append(RpcCall("eth_getLogs", (log_filter,)))
        replies = self._rpc.batch([*tip_check, *calls])
        logs: list[dict[str, Any]] = replies.pop() if fetch_logs else []
        if tip is not None and tip_check and not _is_block(replies.pop(0), tip):
            return self._walk_back(known_window, head)
        if last < first:
            return Advance((), head)

        blocks = _linked_prefix(replies, first)
        if tip is not None and blocks and blocks[0][0].parent_hash != tip.hash:
            return self._walk_back(known_window, head)
        if not blocks:
            return Advance((), head)  # the head moved back meanwhile; the next step sees where

        if fetch_logs:
            logs = self._complete_logs(logs, blocks)
        by_number = {h.number: (h, raw) for h, raw in blocks}
        tokens, stop = self._token_transfers(logs, by_number, watched)
        candidates = [
            (h, tx)
            for h, raw in blocks
            if h.number < stop
            for tx in raw["transactions"]
            if _pays_watched(tx, watched)
        ]
        traced = [h for h, raw in blocks if h.number < stop and raw["transactions"]]
        natives, stop = self._native_transfers(candidates, traced, watched, stop)
        outgoing = [
            (h, tx)
            for h, raw in blocks
            if h.number < stop
            for tx in raw["transactions"]
            if senders is not None and tx["from"].lower() in senders
        ]
        sent, stop = self._sent_transactions(outgoing, stop)

        scanned = tuple(
            ScannedBlock(
                header=h,
                native_transfers=tuple(natives.get(h.number, ())),
                token_transfers=tuple(tokens.get(h.number, ())),
                sent=tuple(sent.get(h.number, ())),
            )
            for h, _ in blocks
            if h.number < stop
        )
        return Advance(scanned, head)

    def _check_chain(self) -> None:
        if self._chain_checked:
            return
        served = _quantity(self._rpc.call("eth_chainId"))
        if served != self._chain_id:
            raise WrongChain(f"node at {self._rpc.url} serves chain {served}, not {self._chain_id}")
        self._chain_checked = True

    def _walk_back(self, window: Sequence[BlockHeader], head: int) -> StepResult:
        """Find the newest header of `window` that is still canonical, in one batch."""
        calls = [RpcCall("eth_getBlockByNumber", (hex(h.number), False)) for h in window]
        canonical = self._rpc.batch(calls)
        return walk_back(window, [None if raw is None else raw["hash"] for raw in canonical], head)

    def _complete_logs(
        self, logs: list[dict[str, Any]], blocks: Sequence[tuple[BlockHeader, dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """`logs`, with the logs of each block whose bloom names a watched token's Transfer
        that `logs` lack fetched again by the block's hash.

        A bloom can match without such a log (other logs set the same bits), so a block that
        still lacks them after the refetches is settled by its receipts: if they hold more
        watched Transfers than the logs, the node is leaving logs out (`IncompleteLogs`);
        otherwise the bloom matched by chance.
        """
        suspects = self._lacking_logs(logs, blocks)
        if not suspects:
            return logs
        log_filter = {"address": self._token_list, "topics": [TRANSFER_TOPIC]}
        for _ in range(LOG_REFETCHES):
            calls = [
                RpcCall("eth_getLogs", ({**log_filter, "blockHash": h.hash},)) for h, _ in suspects
            ]
            fetched = [log for reply in self._rpc.batch(calls) for log in reply]
            by_identity = {(log["blockHash"], log["logIndex"]): log for log in [*logs, *fetched]}
            logs = sorted(
                by_identity.values(),
                key=lambda log: (_quantity(log["blockNumber"]), _quantity(log["logIndex"])),
            )
            suspects = self._lacking_logs(logs, suspects)
            if not suspects:
                return logs
        calls = [RpcCall("eth_getBlockReceipts", (h.hash,)) for h, _ in suspects]
        for (header, _), receipts in zip(suspects, self._rpc.batch(calls), strict=True):
            held = [log for log in logs if log["blockHash"] == header.hash]
            if receipts is None or self._watched_transfers(receipts) > len(held):
                raise IncompleteLogs(
                    f"node at {self._rpc.url} left Transfer logs of block {header.number} "
                    f"({header.hash}) out of {LOG_REFETCHES + 1} answers: its "
                    + ("receipts are missing too" if receipts is None else "receipts hold them")
                )
        return logs

    def _lacking_logs(
        self, logs: list[dict[str, Any]], blocks: Sequence[tuple[BlockHeader, dict[str, Any]]]
    ) -> list[tuple[BlockHeader, dict[str, Any]]]:
        """The blocks whose bloom names the Transfer of a watched token none of `logs` has."""
        held = {(log["blockHash"], log["address"].lower()) for log in logs}
        lacking = []
        for header, raw in blocks:  # every block of a step: the bloom test comes first
            bloom = raw["logsBloom"]
            for token, mask in self._transfer_masks.items():
                if may_contain(bloom, mask) and (header.hash, token) not in held:
                    lacking.append((header, raw))
                    break
        return lacking

    def _watched_transfers(self, receipts: list[dict[str, Any]]) -> int:
        return sum(
            log["address"].lower() in self._tokens and log["topics"][:1] == [TRANSFER_TOPIC]
            for receipt in receipts
            for log in receipt["logs"]
        )

    def _token_transfers(
        self,
        logs: list[dict[str, Any]],
        by_number: Mapping[int, tuple[BlockHeader, dict[str, Any]]],
        watched: WatchedAddresses,
    ) -> tuple[dict[int, list[TokenTransfer]], int]:
        """Transfers to watched addresses, and the first block number whose logs do not match."""
        stop = max(by_number) + 1
        found: dict[int, list[TokenTransfer]] = {}
        for log in logs:
            number = _quantity(log["blockNumber"])
            entry = by_number.get(number)
            if entry is None or entry[0].hash != log["blockHash"] or log.get("removed"):
                # The log comes from another fork than the header we hold: reorg in flight.
                stop = min(stop, number)
                continue
            topics = log["topics"]
            if len(topics) != 3:
                continue  # not the ERC-20 shape (e.g. ERC-721 indexes the token id too)
            to = "0x" + topics[2][-40:].lower()
            if to not in watched:
                continue
            amount = int(log["data"], 16)
            if amount == 0:
                continue
            token = log["address"].lower()
            found.setdefault(number, []).append(
                TokenTransfer(
                    block_number=number,
                    block_hash=log["blockHash"],
                    tx_hash=log["transactionHash"],
                    log_index=_quantity(log["logIndex"]),
                    token=token,
                    asset=self._tokens[token],
                    from_address="0x" + topics[1][-40:].lower(),
                    to_address=to,
                    amount=amount,
                )
            )
        return found, stop

    def _sent_transactions(
        self, outgoing: list[tuple[BlockHeader, dict[str, Any]]], stop: int
    ) -> tuple[dict[int, list[SentTransaction]], int]:
        """The watched senders' transactions with their receipts, in one batch."""
        if not outgoing:
            return {}, stop
        calls = [RpcCall("eth_getTransactionReceipt", (tx["hash"],)) for _, tx in outgoing]
        found: dict[int, list[SentTransaction]] = {}
        for (header, tx), receipt in zip(outgoing, self._rpc.batch(calls), strict=True):
            if receipt is None or receipt["blockHash"] != header.hash:
                stop = min(stop, header.number)
                continue
            found.setdefault(header.number, []).append(_sent_transaction(header, tx, receipt))
        return found, stop

    def _native_transfers(
        self,
        candidates: list[tuple[BlockHeader, dict[str, Any]]],
        traced: list[BlockHeader],
        watched: WatchedAddresses,
        stop: int,
    ) -> tuple[dict[int, list[NativeTransfer]], int]:
        """Top-level ETH confirmed by receipts, plus internal ETH from traces, in one batch."""
        calls = [RpcCall("eth_getTransactionReceipt", (tx["hash"],)) for _, tx in candidates]
        if self._trace_mode is TraceMode.PARITY:
            calls += [RpcCall("trace_block", (hex(h.number),)) for h in traced]
        elif self._trace_mode is TraceMode.CALL_TRACER:
            calls += [RpcCall("debug_traceBlockByHash", (h.hash, _CALL_TRACER)) for h in traced]
        else:
            traced = []
        if not calls:
            return {}, stop
        replies = self._rpc.batch(calls)
        receipts, traces = replies[: len(candidates)], replies[len(candidates) :]

        found: dict[int, list[NativeTransfer]] = {}
        for (header, tx), receipt in zip(candidates, receipts, strict=True):
            if receipt is None or receipt["blockHash"] != header.hash:
                stop = min(stop, header.number)
                continue
            if receipt["status"] != "0x1":
                continue
            found.setdefault(header.number, []).append(
                NativeTransfer(
                    block_number=header.number,
                    block_hash=header.hash,
                    tx_hash=tx["hash"],
                    index=TOP_LEVEL_INDEX,
                    from_address=tx["from"].lower(),
                    to_address=tx["to"].lower(),
                    amount=int(tx["value"], 16),
                )
            )
        collect = _parity_internal if self._trace_mode is TraceMode.PARITY else _geth_internal
        for header, block_trace in zip(traced, traces, strict=True):
            if header.number >= stop:
                continue
            internal = collect(header, block_trace, watched)
            if internal is None:
                stop = min(stop, header.number)
                continue
            if internal:
                found.setdefault(header.number, []).extend(internal)
        return found, stop


def _sent_transaction(
    header: BlockHeader, tx: dict[str, Any], receipt: dict[str, Any]
) -> SentTransaction:
    return SentTransaction(
        block_number=header.number,
        block_hash=header.hash,
        tx_hash=tx["hash"].lower(),
        from_address=tx["from"].lower(),
        nonce=_quantity(tx["nonce"]),
        succeeded=receipt["status"] == "0x1",
        fee=_quantity(receipt["gasUsed"]) * _quantity(receipt["effectiveGasPrice"]),
    )


def fetch_header(rpc: RpcClient, block: int | str = "latest") -> BlockHeader | None:
    """The header of block number `block` (or a tag such as "latest"); None if there is none."""
    raw = rpc.call("eth_getBlockByNumber", hex(block) if isinstance(block, int) else block, False)
    return None if raw is None else _header(raw)


def fetch_headers(rpc: RpcClient, numbers: Sequence[int]) -> list[BlockHeader | None]:
    """The headers of blocks `numbers`, in one batch; None where the node has no such block."""
    replies = rpc.batch([RpcCall("eth_getBlockByNumber", (hex(n), False)) for n in numbers])
    return [None if raw is None else _header(raw) for raw in replies]


def _quantity(value: object) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise RpcProtocolError(f"expected a hex quantity, got {value!r:.80}")
    return int(value, 16)


def _header(raw: dict[str, Any]) -> BlockHeader:
    return BlockHeader(
        number=int(raw["number"], 16),
        hash=raw["hash"],
        parent_hash=raw["parentHash"],
        timestamp=int(raw["timestamp"], 16),
    )


def _is_block(raw: dict[str, Any] | None, header: BlockHeader) -> bool:
    """Whether the node's block `raw` (None: it has none at that height) is `header`'s."""
    return raw is not None and raw["hash"] == header.hash


def _linked_prefix(
    raw_blocks: Sequence[dict[str, Any] | None], first: int
) -> list[tuple[BlockHeader, dict[str, Any]]]:
    """The fetched blocks up to the first missing one or the first broken parent link."""
    out: list[tuple[BlockHeader, dict[str, Any]]] = []
    for expected, raw in enumerate(raw_blocks, start=first):
        if raw is None:
            break
        header = _header(raw)
        if header.number != expected:
            raise RpcProtocolError(f"asked for block {expected}, node sent {header.number}")
        if out and header.parent_hash != out[-1][0].hash:
            break  # a reorg happened while the batch was served; the next step sorts it out
        out.append((header, raw))
    return out


def _pays_watched(tx: dict[str, Any], watched: WatchedAddresses) -> bool:
    to = tx.get("to")
    value = tx["value"]
    return to is not None and value != "0x0" and to.lower() in watched and int(value, 16) > 0


def _parity_internal(
    header: BlockHeader, traces: list[dict[str, Any]], watched: WatchedAddresses
) -> list[NativeTransfer] | None:
    """Internal ETH calls to watched addresses in a `trace_block` result; None on fork mismatch."""
    found: list[NativeTransfer] = []
    tx_hash: str | None = None
    position = 0
    failed: set[tuple[int, ...]] = set()
    for trace in traces:
        if trace.get("blockHash") != header.hash:
            return None
        if trace.get("transactionHash") is None:
            continue  # block rewards on chains that report them
        if trace["transactionHash"] != tx_hash:
            tx_hash, position, failed = trace["transactionHash"], 0, set()
        else:
            position += 1
        path = tuple(trace["traceAddress"])
        if "error" in trace:
            failed.add(path)
        action = trace["action"]
        if not path or trace["type"] != "call" or action.get("callType") != "call":
            continue
        to = action["to"].lower()
        amount = int(action.get("value", "0x0"), 16)
        if amount == 0 or to not in watched:
            continue
        if any(path[:i] in failed for i in range(len(path) + 1)):
            continue
        found.append(
            NativeTransfer(
                block_number=header.number,
                block_hash=header.hash,
                tx_hash=trace["transactionHash"],
                index=trace_index(position),
                from_address=action["from"].lower(),
                to_address=to,
                amount=amount,
            )
        )
    return found


def _geth_internal(
    header: BlockHeader, traces: list[dict[str, Any]], watched: WatchedAddresses
) -> list[NativeTransfer] | None:
    """Internal ETH calls to watched addresses in a callTracer block trace."""
    found: list[NativeTransfer] = []
    for tx_trace in traces:
        tx_hash = tx_trace["txHash"]
        root = tx_trace["result"]
        if "error" in root:
            continue  # the transaction reverted: nothing it sent arrived
        position = 0
        # Depth-first pre-order, children in call order; frames under a failed call are counted
        # (positions stay aligned with parity traces) but never reported.
        stack: list[tuple[dict[str, Any], bool]] = [
            (c, False) for c in reversed(root.get("calls", ()))
        ]
        while stack:
            frame, under_failure = stack.pop()
            position += 1
            failed = under_failure or "error" in frame
            if not failed and frame["type"] == "CALL":
                to = frame["to"].lower()
                amount = int(frame.get("value") or "0x0", 16)
                if amount > 0 and to in watched:
                    found.append(
                        NativeTransfer(
                            block_number=header.number,
                            block_hash=header.hash,
                            tx_hash=tx_hash,
                            index=trace_index(position),
                            from_address=frame["from"].lower(),
                            to_address=to,
                            amount=amount,
                        )
                    )
            stack.extend((c, failed) for c in reversed(frame.get("calls", ())))
    return found
