"""EIP-1559 fees: a quote from `eth_feeHistory` and the fee bump of a replacement transaction.

All amounts are integers in wei per gas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from chains.rpc import RpcClient, RpcProtocolError

# A replacement raises both the fee cap and the tip by at least 1/8 (12.5 %), rounded up.
# go-ethereum's pool asks for 10 % (legacypool DefaultConfig `PriceBump: 10`, checked in
# legacypool/list.go `list.Add`):
#     if old.GasFeeCapCmp(tx) >= 0 || old.GasTipCapCmp(tx) >= 0 { return false, nil }
#     // thresholdFeeCap = oldFC  * (100 + priceBump) / 100
#     // thresholdTip    = oldTip * (100 + priceBump) / 100
#     if tx.GasFeeCapIntCmp(thresholdFeeCap) < 0 || tx.GasTipCapIntCmp(thresholdTip) < 0 {
#         return false, nil
#     }
# so both must be strictly higher and at least 110 % (integer division) of the old ones.
# 12.5 % keeps a margin over that rule; Anvil accepts any increase, so it proves nothing here.
BUMP_NUMERATOR: Final = 9
BUMP_DENOMINATOR: Final = 8


@dataclass(frozen=True, slots=True)
class FeeQuote:
    """The two EIP-1559 fee fields of a transaction."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def __post_init__(self) -> None:
        if self.max_priority_fee_per_gas < 0:
            raise ValueError("the priority fee must not be negative")
        if self.max_fee_per_gas < self.max_priority_fee_per_gas:
            raise ValueError("the fee cap must be at least the priority fee")

    def max_cost(self, gas: int) -> int:
        """The most a transaction with this gas limit can pay in network fees, in wei."""
        return gas * self.max_fee_per_gas


@dataclass(frozen=True, slots=True)
class FeeCapReached:
    """No valid fee fits under the configured cap: wait for lower fees or raise the cap."""

    cap: int
    required_max_fee_per_gas: int


@dataclass(frozen=True, slots=True)
class FeePolicy:
    """How fees are quoted and how far they may go.

    The tip is the `reward_percentile` of the last `blocks` blocks' tips (at least
    `min_priority_fee_per_gas`); the fee cap is `base_fee_multiplier` times the next block's
    base fee plus the tip, so the transaction stays includable while the base fee rises
    (each full block raises it by 12.5 %), and never above `max_fee_per_gas_cap`.
    """

    max_fee_per_gas_cap: int
    min_priority_fee_per_gas: int = 10**9
    blocks: int = 10
    reward_percentile: float = 50.0
    base_fee_multiplier: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.blocks <= 1024:
            raise ValueError("fee history spans 1 to 1024 blocks")
        if not 0 <= self.reward_percentile <= 100:
            raise ValueError("the reward percentile is within 0..100")
        if self.base_fee_multiplier < 1 or self.min_priority_fee_per_gas < 0:
            raise ValueError("the base fee multiplier is at least 1, the minimum tip at least 0")


def quote_fees(rpc: RpcClient, policy: FeePolicy) -> FeeQuote | FeeCapReached:
    """The fees a transaction sent now should carry, from `eth_feeHistory` over `latest`."""
    history = rpc.call("eth_feeHistory", hex(policy.blocks), "latest", [policy.reward_percentile])
    try:
        # baseFeePerGas has one entry more than the blocks asked for: the next block's.
        next_base_fee = int(history["baseFeePerGas"][-1], 16)
        rewards = [int(block[0], 16) for block in history.get("reward") or [] if block]
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise RpcProtocolError(f"eth_feeHistory: unexpected answer {history!r:.200}") from e
    tip = max(_median(rewards), policy.min_priority_fee_per_gas)
    return fees_for(next_base_fee, tip, policy)


def fees_for(next_base_fee: int, tip: int, policy: FeePolicy) -> FeeQuote | FeeCapReached:
    """The quote for a known next base fee and tip, held under the policy's cap."""
    wanted = next_base_fee * policy.base_fee_multiplier + tip
    includable = next_base_fee + tip
    cap = policy.max_fee_per_gas_cap
    if includable > cap:
        return FeeCapReached(cap=cap, required_max_fee_per_gas=includable)
    return FeeQuote(max_fee_per_gas=min(wanted, cap), max_priority_fee_per_gas=tip)


def minimum_bump(fee: int) -> int:
    """The lowest value a replacement may carry for a fee field that was `fee`."""
    return max(fee + 1, -(-fee * BUMP_NUMERATOR // BUMP_DENOMINATOR))


def replacement_fees(
    previous: FeeQuote, market: FeeQuote | None, cap: int
) -> FeeQuote | FeeCapReached:
    """Fees for a transaction replacing one sent with `previous` (same nonce).

    Both fields rise by at least 12.5 % (rounded up, and by at least 1 wei), or to the
    current market quote if that is higher; the fee cap never exceeds `cap`. When even the
    minimum bump does not fit under `cap`, the answer is FeeCapReached.
    """
    required_fee = minimum_bump(previous.max_fee_per_gas)
    required_tip = minimum_bump(previous.max_priority_fee_per_gas)
    if required_fee > cap:
        return FeeCapReached(cap=cap, required_max_fee_per_gas=required_fee)
    fee = required_fee if market is None else max(required_fee, market.max_fee_per_gas)
    fee = min(fee, cap)
    tip = required_tip if market is None else max(required_tip, market.max_priority_fee_per_gas)
    # required_tip <= required_fee <= fee, since the previous tip was at most its fee cap.
    return FeeQuote(max_fee_per_gas=fee, max_priority_fee_per_gas=min(tip, fee))


def _median(values: list[int]) -> int:
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[len(ordered) // 2]
