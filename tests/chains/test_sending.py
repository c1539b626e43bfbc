"""Building, signing (custody's KeySigner), sending and tracking transactions on a real Anvil,
and what each node answer to eth_sendRawTransaction is classified as."""

import os

import pytest

from chains import (
    ERC20_TRANSFER_GAS,
    ETH_TRANSFER_GAS,
    AccountNonces,
    FeePolicy,
    FeeQuote,
    RpcClient,
    SendOutcome,
    TransactionRequest,
    TransactionState,
    account_nonces,
    classify_send_error,
    estimate_gas,
    native_balance,
    native_transfer,
    quote_fees,
    replacement_fees,
    send_raw_transaction,
    send_raw_transactions,
    token_balance,
    token_transfer,
    transaction_status,
    transaction_statuses,
)
from chains.devnet import DevChain, find_free_port
from custody import KeySigner, MasterSeed, UnsignedTransaction

POLICY = FeePolicy(max_fee_per_gas_cap=500 * 10**9, min_priority_fee_per_gas=10**9)
ONE_ETH = 10**18


@pytest.fixture
def hot_wallet(devnet: DevChain) -> KeySigner:
    """A fresh seed's hot wallet on the devnet's chain, holding 10 ETH."""
    signer = KeySigner.hot_wallet(MasterSeed(os.urandom(64)), account=devnet.chain_id)
    devnet.devnet.set_balance(signer.address, 10 * ONE_ETH)
    return signer


def _fees(devnet: DevChain) -> FeeQuote:
    quote = quote_fees(devnet.rpc, POLICY)
    assert isinstance(quote, FeeQuote)
    return quote


def _outsider() -> str:
    return "0x" + os.urandom(20).hex()


def _eth_transfer(devnet: DevChain, nonce: int, to: str, amount: int) -> TransactionRequest:
    return native_transfer(
        chain_id=devnet.chain_id, nonce=nonce, to=to, amount=amount, fees=_fees(devnet)
    )


def test_an_eth_transfer_reaches_the_outsider_exactly(
    devnet: DevChain, hot_wallet: KeySigner
) -> None:
    outsider = _outsider()
    request = _eth_transfer(devnet, 0, outsider, 12345)
    as_port: UnsignedTransaction = request
    signed = hot_wallet.sign(as_port)
    result = send_raw_transaction(devnet.rpc, signed.raw_transaction)
    assert result.outcome is SendOutcome.ACCEPTED
    assert result.tx_hash == "0x" + signed.transaction_hash.hex()
    assert account_nonces(devnet.rpc, hot_wallet.address) == AccountNonces(latest=0, pending=1)
    assert transaction_status(devnet.rpc, result.tx_hash).state is TransactionState.PENDING
    devnet.mine()
    status = transaction_status(devnet.rpc, result.tx_hash)
    assert status.state is TransactionState.MINED
    assert status.receipt is not None
    assert status.receipt.succeeded
    assert status.receipt.gas_used == ETH_TRANSFER_GAS
    assert status.receipt.fee <= request.fees.max_cost(ETH_TRANSFER_GAS)
    assert native_balance(devnet.rpc, outsider) == 12345
    spent = 10 * ONE_ETH - native_balance(devnet.rpc, hot_wallet.address)
    assert spent == 12345 + status.receipt.fee
    assert account_nonces(devnet.rpc, hot_wallet.address) == AccountNonces(latest=1, pending=1)


def test_a_usdc_transfer_reaches_the_outsider_and_an_uncovered_one_mines_with_status_0(
    devnet: DevChain, hot_wallet: KeySigner
) -> None:
    devnet.mint_tokens(hot_wallet.address, 500)
    devnet.mine()
    outsider = _outsider()
    fees = _fees(devnet)
    common = {"chain_id": devnet.chain_id, "token": devnet.token_address, "fees": fees}
    request = token_transfer(nonce=0, to=outsider, amount=200, **common)  # type: ignore[arg-type]
    estimate = estimate_gas(devnet.rpc, hot_wallet.address, request)
    assert 21_000 < estimate < ERC20_TRANSFER_GAS
    uncovered = token_transfer(nonce=1, to=outsider, amount=10**9, **common)  # type: ignore[arg-type]
    signed = hot_wallet.sign_batch([request, uncovered])
    results = [send_raw_transaction(devnet.rpc, s.raw_transaction) for s in signed]
    assert [r.outcome for r in results] == [SendOutcome.ACCEPTED] * 2
    devnet.mine()
    first, second = transaction_statuses(devnet.rpc, [r.tx_hash for r in results])
    assert first.receipt is not None and first.receipt.succeeded
    assert second.receipt is not None and not second.receipt.succeeded
    assert token_balance(devnet.rpc, devnet.token_address, outsider) == 200
    assert token_balance(devnet.rpc, devnet.token_address, hot_wallet.address) == 300


def test_resending_the_same_bytes_is_already_known_then_nonce_too_low_once_mined(
    devnet: DevChain, hot_wallet: KeySigner
) -> None:
    signed = hot_wallet.sign(_eth_transfer(devnet, 0, _outsider(), 1))
    assert send_raw_transaction(devnet.rpc, signed.raw_transaction).outcome is SendOutcome.ACCEPTED
    again = send_raw_transaction(devnet.rpc, signed.raw_transaction)
    assert again.outcome is SendOutcome.ALREADY_KNOWN
    assert again.message == "transaction already imported"
    devnet.mine()
    after_mining = send_raw_transaction(devnet.rpc, signed.raw_transaction)
    assert after_mining.outcome is SendOutcome.NONCE_TOO_LOW
    assert after_mining.tx_hash == again.tx_hash


def test_a_bumped_replacement_is_accepted_and_only_one_of_the_nonce_mines(
    devnet: DevChain, hot_wallet: KeySigner
) -> None:
    request = _eth_transfer(devnet, 0, _outsider(), 1)
    first = hot_wallet.sign(request)
    assert send_raw_transaction(devnet.rpc, first.raw_transaction).outcome is SendOutcome.ACCEPTED
    same_fees = hot_wallet.sign(_eth_transfer(devnet, 0, _outsider(), 2).with_fees(request.fees))
    refused = send_raw_transaction(devnet.rpc, same_fees.raw_transaction)
    assert refused.outcome is SendOutcome.REPLACEMENT_UNDERPRICED
    bumped_fees = replacement_fees(request.fees, _fees(devnet), POLICY.max_fee_per_gas_cap)
    assert isinstance(bumped_fees, FeeQuote)
    bumped = hot_wallet.sign(request.with_fees(bumped_fees))
    result = send_raw_transaction(devnet.rpc, bumped.raw_transaction)
    assert result.outcome is SendOutcome.ACCEPTED
    devnet.mine()
    old, new = transaction_statuses(
        devnet.rpc, ["0x" + first.transaction_hash.hex(), result.tx_hash]
    )
    assert old.state is TransactionState.NOT_FOUND
    assert new.state is TransactionState.MINED
    assert account_nonces(devnet.rpc, hot_wallet.address) == AccountNonces(latest=1, pending=1)


def test_a_signed_batch_of_consecutive_nonces_mines_in_one_block_without_gaps(
    devnet: DevChain, hot_wallet: KeySigner
) -> None:
    fees = _fees(devnet)
    outsider = _outsider()
    requests = [
        native_transfer(chain_id=devnet.chain_id, nonce=n, to=outsider, amount=n + 1, fees=fees)
        for n in range(20)
    ]
    signed = hot_wallet.sign_batch(requests)
    results = send_raw_transactions(devnet.rpc, [s.raw_transaction for s in signed])
    assert {r.outcome for r in results} == {SendOutcome.ACCEPTED}
    assert [r.tx_hash for r in results] == ["0x" + s.transaction_hash.hex() for s in signed]
    assert account_nonces(devnet.rpc, hot_wallet.address) == AccountNonces(latest=0, pending=20)
    head = devnet.mine()
    statuses = transaction_statuses(devnet.rpc, [r.tx_hash for r in results])
    assert {s.receipt.block_number for s in statuses if s.receipt is not None} == {head}
    assert account_nonces(devnet.rpc, hot_wallet.address) == AccountNonces(latest=20, pending=20)
    assert native_balance(devnet.rpc, outsider) == sum(range(1, 21))


def test_a_transaction_removed_by_a_reorg_is_mined_again_from_its_stored_bytes(
    devnet: DevChain, hot_wallet: KeySigner
) -> None:
    outsider = _outsider()
    stored = hot_wallet.sign(_eth_transfer(devnet, 0, outsider, 77)).raw_transaction
    tx_hash = send_raw_transaction(devnet.rpc, stored).tx_hash
    devnet.mine()
    assert transaction_status(devnet.rpc, tx_hash).state is TransactionState.MINED
    devnet.devnet.reorg(1)
    # Anvil drops the removed transaction rather than returning it to its pool.
    assert transaction_status(devnet.rpc, tx_hash).state is TransactionState.NOT_FOUND
    assert account_nonces(devnet.rpc, hot_wallet.address) == AccountNonces(latest=0, pending=0)
    assert send_raw_transaction(devnet.rpc, stored).outcome is SendOutcome.ACCEPTED
    devnet.mine()
    assert transaction_status(devnet.rpc, tx_hash).state is TransactionState.MINED
    assert native_balance(devnet.rpc, outsider) == 77


def test_anvil_accepts_a_replacement_that_go_ethereum_refuses(
    devnet: DevChain, hot_wallet: KeySigner
) -> None:
    # Why the bump rule is unit-tested against geth's rule, not against Anvil.
    request = _eth_transfer(devnet, 0, _outsider(), 1)
    hot_wallet_send = send_raw_transaction(devnet.rpc, hot_wallet.sign(request).raw_transaction)
    assert hot_wallet_send.outcome is SendOutcome.ACCEPTED
    one_wei_more = FeeQuote(request.max_fee_per_gas + 1, request.max_priority_fee_per_gas + 1)
    replacement = hot_wallet.sign(request.with_fees(one_wei_more))
    result = send_raw_transaction(devnet.rpc, replacement.raw_transaction)
    assert result.outcome is SendOutcome.ACCEPTED
    devnet.mine()


def test_an_unfunded_sender_is_insufficient_funds(devnet: DevChain) -> None:
    poor = KeySigner.hot_wallet(MasterSeed(os.urandom(64)), account=devnet.chain_id)
    signed = poor.sign(_eth_transfer(devnet, 0, _outsider(), 1))
    result = send_raw_transaction(devnet.rpc, signed.raw_transaction)
    assert result.outcome is SendOutcome.INSUFFICIENT_FUNDS


def test_a_fee_cap_below_the_base_fee_is_underpriced(
    devnet: DevChain, hot_wallet: KeySigner
) -> None:
    request = _eth_transfer(devnet, 0, _outsider(), 1).with_fees(FeeQuote(1, 0))
    result = send_raw_transaction(devnet.rpc, hot_wallet.sign(request).raw_transaction)
    assert result.outcome is SendOutcome.UNDERPRICED
    assert "base fee" in result.message


def test_undecodable_bytes_are_rejected(devnet: DevChain) -> None:
    result = send_raw_transaction(devnet.rpc, bytes.fromhex("02abcdef"))
    assert result.outcome is SendOutcome.REJECTED


def test_an_unreachable_node_is_transient(devnet: DevChain, hot_wallet: KeySigner) -> None:
    signed = hot_wallet.sign(_eth_transfer(devnet, 0, _outsider(), 1))
    with RpcClient(f"http://127.0.0.1:{find_free_port()}", connect_timeout=0.5) as nowhere:
        result = send_raw_transaction(nowhere, signed.raw_transaction)
    assert result.outcome is SendOutcome.TRANSIENT
    assert result.tx_hash == "0x" + signed.transaction_hash.hex()


def test_each_answer_in_a_batch_of_sends_is_classified_on_its_own(
    devnet: DevChain, hot_wallet: KeySigner
) -> None:
    first, second = hot_wallet.sign_batch(
        [_eth_transfer(devnet, n, _outsider(), 1) for n in range(2)]
    )
    send_raw_transaction(devnet.rpc, first.raw_transaction)
    raws = [first.raw_transaction, bytes.fromhex("02abcdef"), second.raw_transaction]
    results = send_raw_transactions(devnet.rpc, raws)
    assert [r.outcome for r in results] == [
        SendOutcome.ALREADY_KNOWN,
        SendOutcome.REJECTED,
        SendOutcome.ACCEPTED,
    ]
    assert results[0].message == "transaction already imported"
    with RpcClient(f"http://127.0.0.1:{find_free_port()}", connect_timeout=0.5) as nowhere:
        unanswered = send_raw_transactions(nowhere, raws)
    assert {r.outcome for r in unanswered} == {SendOutcome.TRANSIENT}
    assert [r.tx_hash for r in unanswered] == [r.tx_hash for r in results]


def test_an_unknown_hash_is_not_found(devnet: DevChain) -> None:
    status = transaction_status(devnet.rpc, "0x" + os.urandom(32).hex())
    assert status.state is TransactionState.NOT_FOUND
    assert status.receipt is None


# Messages as the clients' sources write them: go-ethereum (core/error.go and
# core/txpool/errors.go, with the details its pool appends), Erigon ("<ImportResult>:
# <DiscardReason>"), older Nethermind (AcceptTxResult names; newer ones use geth's phrases),
# OpenEthereum, and Anvil (as answered by the devnet above).
RECORDED = [
    ("already known", SendOutcome.ALREADY_KNOWN),
    ("ALREADY_EXISTS: already known", SendOutcome.ALREADY_KNOWN),
    ("INTERNAL_ERROR: existing tx with same hash", SendOutcome.ALREADY_KNOWN),
    ("known transaction: 5b5a1c0e4b2c", SendOutcome.ALREADY_KNOWN),
    ("AlreadyKnown", SendOutcome.ALREADY_KNOWN),
    ("transaction already imported", SendOutcome.ALREADY_KNOWN),
    (
        "nonce too low: address 0xAbC0000000000000000000000000000000000001, tx: 3 state: 5",
        SendOutcome.NONCE_TOO_LOW,
    ),
    ("STALE: nonce too low", SendOutcome.NONCE_TOO_LOW),
    ("OldNonce, Current nonce: 5, nonce of rejected tx: 3", SendOutcome.NONCE_TOO_LOW),
    ("Transaction nonce is too low. Try incrementing the nonce.", SendOutcome.NONCE_TOO_LOW),
    ("replacement transaction underpriced", SendOutcome.REPLACEMENT_UNDERPRICED),
    ("FEE_TOO_LOW: replacement transaction underpriced", SendOutcome.REPLACEMENT_UNDERPRICED),
    ("INVALID: could not replace existing tx", SendOutcome.REPLACEMENT_UNDERPRICED),
    ("ReplacementNotAllowed", SendOutcome.REPLACEMENT_UNDERPRICED),
    (
        "Transaction gas price supplied is too low. There is another transaction with same "
        "nonce in the queue. Try increasing the gas price or incrementing the nonce.",
        SendOutcome.REPLACEMENT_UNDERPRICED,
    ),
    ("transaction underpriced: tip needed 1, tip permitted 0", SendOutcome.UNDERPRICED),
    (
        "max fee per gas less than block base fee: address 0xabc, maxFeePerGas: 1, baseFee: 7",
        SendOutcome.UNDERPRICED,
    ),
    ("FEE_TOO_LOW: underpriced", SendOutcome.UNDERPRICED),
    ("FeeTooLow, MaxFeePerGas too low", SendOutcome.UNDERPRICED),
    (
        "insufficient funds for gas * price + value: balance 0, tx cost 21000000, "
        "overshot 21000000",
        SendOutcome.INSUFFICIENT_FUNDS,
    ),
    ("Insufficient funds for gas * price + value", SendOutcome.INSUFFICIENT_FUNDS),
    ("INVALID: insufficient funds", SendOutcome.INSUFFICIENT_FUNDS),
    (
        "InsufficientFunds, Account balance: 0, cumulative cost: 21000",
        SendOutcome.INSUFFICIENT_FUNDS,
    ),
    ("txpool is full", SendOutcome.TRANSIENT),
    ("INTERNAL_ERROR: pending sub-pool is full", SendOutcome.TRANSIENT),
    ("429 Too Many Requests", SendOutcome.TRANSIENT),
    ("request timed out", SendOutcome.TRANSIENT),
    ("intrinsic gas too low", SendOutcome.REJECTED),
    ("invalid sender", SendOutcome.REJECTED),
    ("max priority fee per gas higher than max fee per gas", SendOutcome.REJECTED),
    ("exceeds block gas limit", SendOutcome.REJECTED),
    ("Failed to decode transaction", SendOutcome.REJECTED),
    ("transaction type not supported", SendOutcome.REJECTED),
    ("unknown transaction type 0x05", SendOutcome.REJECTED),
]


@pytest.mark.parametrize(("message", "outcome"), RECORDED)
def test_recorded_node_messages_are_classified_by_meaning(
    message: str, outcome: SendOutcome
) -> None:
    assert classify_send_error(message) is outcome
