"""LocalSigner signs EIP-1559 transactions that recover to the right sender."""

import pickle
from typing import Any

import pytest
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_hash.auto import keccak
from hexbytes import HexBytes

from custody import (
    DepositKeyTree,
    LocalSigner,
    TransactionSigner,
    UnknownSender,
    UnsupportedTransaction,
)

RECIPIENT = "0x000000000000000000000000000000000000dEaD"


def _transfer(**overrides: Any) -> dict[str, Any]:
    transaction: dict[str, Any] = {
        "type": 2,
        "chainId": 11155111,
        "nonce": 4,
        "to": RECIPIENT,
        "value": 10**15,
        "gas": 21_000,
        "maxFeePerGas": 30 * 10**9,
        "maxPriorityFeePerGas": 2 * 10**9,
        "data": b"",
    }
    transaction.update(overrides)
    return transaction


@pytest.fixture(scope="module")
def signer(hardhat_tree: DepositKeyTree) -> LocalSigner:
    return LocalSigner.from_tree(hardhat_tree, range(5))


def test_signed_transaction_recovers_to_the_sender(
    signer: LocalSigner, hardhat_tree: DepositKeyTree
) -> None:
    as_protocol: TransactionSigner = signer
    sender = hardhat_tree.address(3)
    signed = as_protocol.sign_transaction(sender, _transfer())
    assert signed.sender == sender
    assert signed.raw_transaction[0] == 2  # EIP-2718 type byte of EIP-1559
    assert signed.transaction_hash == keccak(signed.raw_transaction)
    assert Account.recover_transaction(signed.raw_transaction) == sender
    decoded = TypedTransaction.from_bytes(HexBytes(signed.raw_transaction)).as_dict()
    assert decoded["chainId"] == 11155111
    assert decoded["nonce"] == 4
    assert decoded["value"] == 10**15
    assert decoded["maxFeePerGas"] == 30 * 10**9


def test_each_known_sender_signs_for_itself(
    signer: LocalSigner, hardhat_tree: DepositKeyTree
) -> None:
    assert signer.senders == frozenset(hardhat_tree.address(i) for i in range(5))
    for index in range(5):
        sender = hardhat_tree.address(index)
        signed = signer.sign_transaction(sender, _transfer(nonce=index))
        assert Account.recover_transaction(signed.raw_transaction) == sender


def test_sender_case_and_matching_from_field_are_accepted(
    signer: LocalSigner, hardhat_tree: DepositKeyTree
) -> None:
    sender = hardhat_tree.address(1)
    signed = signer.sign_transaction(sender.lower(), _transfer(**{"from": sender.lower()}))
    assert signed.sender == sender
    assert Account.recover_transaction(signed.raw_transaction) == sender


def test_type_defaults_to_eip1559(signer: LocalSigner, hardhat_tree: DepositKeyTree) -> None:
    transaction = _transfer()
    del transaction["type"]
    signed = signer.sign_transaction(hardhat_tree.address(0), transaction)
    assert signed.raw_transaction[0] == 2


def test_unknown_sender_is_refused(signer: LocalSigner, hardhat_tree: DepositKeyTree) -> None:
    with pytest.raises(UnknownSender):
        signer.sign_transaction(hardhat_tree.address(5), _transfer())


@pytest.mark.parametrize(
    "transaction",
    [
        _transfer(type=0),
        _transfer(gasPrice=10**9),
        {key: value for key, value in _transfer().items() if key != "chainId"},
        {key: value for key, value in _transfer().items() if key != "maxFeePerGas"},
        _transfer(**{"from": RECIPIENT}),
    ],
)
def test_non_eip1559_or_mismatched_transactions_are_refused(
    signer: LocalSigner, hardhat_tree: DepositKeyTree, transaction: dict[str, Any]
) -> None:
    with pytest.raises(UnsupportedTransaction):
        signer.sign_transaction(hardhat_tree.address(0), transaction)


def test_signer_never_shows_its_keys(signer: LocalSigner, hardhat_tree: DepositKeyTree) -> None:
    text = repr(signer) + str(signer)
    assert text == "LocalSigner(5 keys, <redacted>)" * 2
    assert hardhat_tree.private_key(0).hex() not in text
    with pytest.raises(TypeError):
        pickle.dumps(signer)
