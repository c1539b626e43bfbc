"""The fee bump meets go-ethereum's replacement rule (Anvil accepts less, so it can't tell);
quotes come from eth_feeHistory and stay under the cap."""

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chains import (
    FeeCapReached,
    FeePolicy,
    FeeQuote,
    fees_for,
    minimum_bump,
    native_transfer,
    quote_fees,
    replacement_fees,
)
from chains.devnet import DevChain
from custody import KeySigner, MasterSeed

GETH_PRICE_BUMP = 10  # legacypool.DefaultConfig.PriceBump
WEI = st.integers(min_value=0, max_value=2**128)


def geth_accepts_replacement(
    old: FeeQuote, new: FeeQuote, price_bump: int = GETH_PRICE_BUMP
) -> bool:
    """go-ethereum core/txpool/legacypool/list.go `list.Add`, transcribed."""
    if (
        old.max_fee_per_gas >= new.max_fee_per_gas
        or old.max_priority_fee_per_gas >= new.max_priority_fee_per_gas
    ):
        return False
    threshold_fee_cap = (100 + price_bump) * old.max_fee_per_gas // 100
    threshold_tip = (100 + price_bump) * old.max_priority_fee_per_gas // 100
    return (
        new.max_fee_per_gas >= threshold_fee_cap and new.max_priority_fee_per_gas >= threshold_tip
    )


@st.composite
def fee_quotes(draw: st.DrawFn) -> FeeQuote:
    tip = draw(WEI)
    return FeeQuote(max_fee_per_gas=tip + draw(WEI), max_priority_fee_per_gas=tip)


@pytest.mark.parametrize(
    ("fee", "bumped"),
    [
        (0, 1),
        (1, 2),
        (7, 8),
        (8, 9),
        (9, 11),
        (16, 18),
        (10**9, 1_125_000_000),
        (10**9 + 1, 1_125_000_002),
    ],
)
def test_minimum_bump_is_an_eighth_rounded_up_and_at_least_one_wei(fee: int, bumped: int) -> None:
    assert minimum_bump(fee) == bumped


@given(previous=fee_quotes(), market=st.none() | fee_quotes(), cap=WEI)
def test_every_bump_geth_would_accept_or_capped(
    previous: FeeQuote, market: FeeQuote | None, cap: int
) -> None:
    result = replacement_fees(previous, market, cap)
    if isinstance(result, FeeCapReached):
        assert minimum_bump(previous.max_fee_per_gas) > cap
        assert result.cap == cap
        return
    assert geth_accepts_replacement(previous, result)
    assert 8 * result.max_fee_per_gas >= 9 * previous.max_fee_per_gas
    assert 8 * result.max_priority_fee_per_gas >= 9 * previous.max_priority_fee_per_gas
    assert result.max_fee_per_gas <= cap
    if market is not None:
        # Follows the market up, as far as the cap allows.
        assert result.max_fee_per_gas == min(
            cap, max(market.max_fee_per_gas, minimum_bump(previous.max_fee_per_gas))
        )


def test_a_bump_the_cap_cannot_hold_is_capped() -> None:
    previous = FeeQuote(max_fee_per_gas=100 * 10**9, max_priority_fee_per_gas=2 * 10**9)
    assert replacement_fees(previous, None, cap=112 * 10**9) == FeeCapReached(
        cap=112 * 10**9, required_max_fee_per_gas=112_500_000_000
    )
    bumped = replacement_fees(previous, None, cap=112_500_000_000)
    assert bumped == FeeQuote(
        max_fee_per_gas=112_500_000_000, max_priority_fee_per_gas=2_250_000_000
    )
    high_market = FeeQuote(max_fee_per_gas=500 * 10**9, max_priority_fee_per_gas=50 * 10**9)
    assert replacement_fees(previous, high_market, cap=200 * 10**9) == FeeQuote(
        max_fee_per_gas=200 * 10**9, max_priority_fee_per_gas=50 * 10**9
    )


def test_quote_is_twice_the_next_base_fee_plus_the_tip_under_the_cap() -> None:
    policy = FeePolicy(max_fee_per_gas_cap=100 * 10**9, min_priority_fee_per_gas=10**9)
    assert fees_for(20 * 10**9, 10**9, policy) == FeeQuote(41 * 10**9, 10**9)
    assert fees_for(60 * 10**9, 10**9, policy) == FeeQuote(100 * 10**9, 10**9)
    assert fees_for(99 * 10**9, 2 * 10**9, policy) == FeeCapReached(
        cap=100 * 10**9, required_max_fee_per_gas=101 * 10**9
    )


def test_fee_fields_are_checked() -> None:
    with pytest.raises(ValueError):
        FeeQuote(max_fee_per_gas=1, max_priority_fee_per_gas=2)
    with pytest.raises(ValueError):
        FeeQuote(max_fee_per_gas=1, max_priority_fee_per_gas=-1)
    with pytest.raises(ValueError):
        FeePolicy(max_fee_per_gas_cap=1, blocks=0)
    assert FeeQuote(30, 2).max_cost(21_000) == 630_000


def test_quote_from_anvil_fee_history_covers_the_next_base_fee(devnet: DevChain) -> None:
    devnet.mine(4)
    policy = FeePolicy(max_fee_per_gas_cap=10**12, min_priority_fee_per_gas=10**9, blocks=4)
    quote = quote_fees(devnet.rpc, policy)
    assert isinstance(quote, FeeQuote)
    history = devnet.rpc.call("eth_feeHistory", hex(1), "latest", [])
    next_base_fee = int(history["baseFeePerGas"][-1], 16)
    # Empty devnet blocks carry no tips: the policy's minimum applies.
    assert quote == FeeQuote(2 * next_base_fee + 10**9, 10**9)
    capped = quote_fees(devnet.rpc, FeePolicy(max_fee_per_gas_cap=next_base_fee))
    assert capped == FeeCapReached(
        cap=next_base_fee, required_max_fee_per_gas=next_base_fee + 10**9
    )


def test_the_quoted_tip_follows_the_tips_paid_in_recent_blocks(devnet: DevChain) -> None:
    signer = KeySigner.hot_wallet(MasterSeed(os.urandom(64)), account=devnet.chain_id)
    devnet.devnet.set_balance(signer.address, 10**18)
    paid = FeeQuote(max_fee_per_gas=100 * 10**9, max_priority_fee_per_gas=5 * 10**9)
    request = native_transfer(
        chain_id=devnet.chain_id, nonce=0, to=signer.address, amount=1, fees=paid
    )
    devnet.devnet.send_raw_transaction(signer.sign(request).raw_transaction)
    devnet.mine()
    policy = FeePolicy(max_fee_per_gas_cap=10**12, min_priority_fee_per_gas=10**9, blocks=1)
    quote = quote_fees(devnet.rpc, policy)
    assert isinstance(quote, FeeQuote)
    assert quote.max_priority_fee_per_gas == 5 * 10**9
