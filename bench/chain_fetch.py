"""Catch-up speed and memory of ChainFollower against a local Anvil.

Builds a chain of mostly empty blocks plus some busy ones (ETH, USDC and forwarded ETH to
watched and unwatched addresses), watches 100,000 addresses, and times a full catch-up in each
trace mode. Usage: python bench/chain_fetch.py [--empty 3000] [--busy 40] [--watched 100000]
"""

import argparse
import resource
import secrets
import time

import repo_first  # noqa: F401 (first: the path to the service, see its docstring)

from chains import AddressSet, Advance, ChainFollower, TraceMode, fetch_header, next_window
from chains.devnet import DevChain, start_dev_chain


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_chain(chain: DevChain, empty: int, busy: int, targets: list[str]) -> tuple[int, int]:
    """Mine `busy` blocks of 30 transactions (10 ETH, 10 USDC, 10 forwarded ETH to watched
    addresses), then `empty` empty blocks; return the first and last block number."""
    first = chain.devnet.block_number() + 1
    senders = [a.address for a in chain.accounts[1:]]
    for b in range(busy):
        for i in range(10):
            sender = senders[(b + i) % len(senders)]
            chain.send_eth(sender, targets[(b * 10 + i) % len(targets)], 10**15 + i)
            chain.send_tokens(sender, targets[(b * 7 + i) % len(targets)], 10**6 + i)
            chain.forward_eth(sender, targets[(b * 3 + i) % len(targets)], 10**14)
        chain.mine()
    done = 0
    while done < empty:
        n = min(200, empty - done)
        chain.mine(n)
        done += n
    return first, chain.devnet.block_number()


def catch_up(
    chain: DevChain, mode: TraceMode, watched: AddressSet, first: int, last: int, *, max_blocks: int
) -> tuple[int, int, float]:
    """Follow blocks first..last; return (blocks, deposits found, seconds)."""
    follower = ChainFollower(chain.rpc, tokens={chain.token_address: "USDC"}, trace_mode=mode)
    header = fetch_header(chain.rpc, first - 1)
    assert header is not None
    window = [header]
    blocks = deposits = 0
    began = time.perf_counter()
    while window[-1].number < last:
        result = follower.step(window, watched, min(max_blocks, last - window[-1].number))
        assert isinstance(result, Advance) and result.blocks
        blocks += len(result.blocks)
        deposits += sum(len(b.native_transfers) + len(b.token_transfers) for b in result.blocks)
        window = next_window(window, result, 128)
    return blocks, deposits, time.perf_counter() - began


def report(label: str, blocks: int, deposits: int, seconds: float) -> None:
    rate = blocks / seconds
    print(
        f"{label:24} {blocks:6} blocks {seconds:6.2f} s {rate:8.0f} blocks/s {deposits:5} deposits"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--empty", type=int, default=3000)
    parser.add_argument("--busy", type=int, default=40)
    parser.add_argument("--watched", type=int, default=100_000)
    parser.add_argument("--max-blocks", type=int, default=250)
    args = parser.parse_args()

    before = rss_mb()
    targets = ["0x" + secrets.token_hex(20) for _ in range(50)]
    watched = AddressSet(targets)
    for _ in range(args.watched - len(targets)):
        watched.add("0x" + secrets.token_hex(20))
    print(f"AddressSet of {len(watched)} addresses: +{rss_mb() - before:.1f} MB RSS")

    chain = start_dev_chain(extra_args=["--quiet"])
    try:
        began = time.perf_counter()
        first, last = build_chain(chain, args.empty, args.busy, targets)
        print(f"built blocks {first}..{last} in {time.perf_counter() - began:.1f} s")
        busy_last = first + args.busy - 1
        for mode in TraceMode:
            found = catch_up(chain, mode, watched, first, busy_last, max_blocks=args.max_blocks)
            report(f"busy, traces {mode.value}", *found)
        for mode in (TraceMode.NONE, TraceMode.PARITY):
            found = catch_up(chain, mode, watched, busy_last + 1, last, max_blocks=args.max_blocks)
            report(f"empty, traces {mode.value}", *found)
        found = catch_up(chain, TraceMode.PARITY, watched, first, last, max_blocks=args.max_blocks)
        report("all, traces parity", *found)
        follower = ChainFollower(chain.rpc, tokens={chain.token_address: "USDC"})
        tip = fetch_header(chain.rpc)
        assert tip is not None
        began = time.perf_counter()
        for _ in range(200):
            follower.step([tip], watched)
        print(f"idle poll at the head: {(time.perf_counter() - began) / 200 * 1000:.2f} ms a step")
    finally:
        chain.devnet.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MB (current {rss_mb():.0f} MB)")


if __name__ == "__main__":
    main()
