"""The hot wallet's key and the Signer port: KeySigner signs what nodes accept, as the right
address, and no secret ever shows in a repr, an error or a log."""

import logging
import pickle
import traceback
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_hash.auto import keccak
from hexbytes import HexBytes

from chains import TransactionRequest
from custody import (
    DepositKeyTree,
    FakeSigner,
    InvalidPrivateKey,
    KeySigner,
    MasterSeed,
    Signer,
    SignerUnavailable,
    UnsupportedTransaction,
    WrongPassword,
    XpubAddressDeriver,
    create_keystore,
    hot_wallet_key,
    hot_wallet_path,
)

PASSWORD = "correct horse battery staple"
FAST_N = 2**4
CHAIN_ACCOUNT = 31337
RECIPIENT = "0x000000000000000000000000000000000000dead"


def _request(**overrides: object) -> TransactionRequest:
    fields: dict[str, object] = {
        "chain_id": 31337,
        "nonce": 7,
        "to": RECIPIENT,
        "value": 10**15,
        "data": b"",
        "gas": 21_000,
        "max_fee_per_gas": 30 * 10**9,
        "max_priority_fee_per_gas": 2 * 10**9,
    }
    fields.update(overrides)
    return TransactionRequest(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def hot_signer(hardhat_seed: MasterSeed) -> KeySigner:
    return KeySigner.hot_wallet(hardhat_seed, account=CHAIN_ACCOUNT)


def test_the_hot_wallet_is_the_first_internal_address_of_the_chains_account(
    eth_account_hd: type[Account], hardhat_mnemonic: str, hot_signer: KeySigner
) -> None:
    assert hot_wallet_path(CHAIN_ACCOUNT) == "m/44'/60'/31337'/1/0"
    reference = eth_account_hd.from_mnemonic(hardhat_mnemonic, account_path="m/44'/60'/31337'/1/0")
    assert hot_signer.address == reference.address


def test_the_hot_wallet_is_no_deposit_address_and_differs_per_chain(
    hardhat_seed: MasterSeed, hot_signer: KeySigner
) -> None:
    tree = DepositKeyTree(hardhat_seed, account=CHAIN_ACCOUNT)
    assert hot_signer.address not in {tree.address(index) for index in range(1000)}
    other_chain = KeySigner.hot_wallet(hardhat_seed, account=31338)
    assert other_chain.address != hot_signer.address


def test_a_process_holding_only_the_account_xpub_knows_the_hot_wallet_address(
    hardhat_seed: MasterSeed, hot_signer: KeySigner
) -> None:
    xpub = DepositKeyTree(hardhat_seed, account=CHAIN_ACCOUNT).account_xpub
    assert XpubAddressDeriver(xpub).hot_wallet_address == hot_signer.address


def test_signed_bytes_recover_to_the_hot_wallet_and_carry_every_field(
    hot_signer: KeySigner,
) -> None:
    signer: Signer = hot_signer
    request = _request(data=b"\x01\x02")
    signed = signer.sign(request)
    assert signed.sender == hot_signer.address
    assert signed.raw_transaction[0] == 2
    assert signed.transaction_hash == keccak(signed.raw_transaction)
    assert Account.recover_transaction(signed.raw_transaction) == hot_signer.address
    decoded = TypedTransaction.from_bytes(HexBytes(signed.raw_transaction)).as_dict()
    assert decoded["chainId"] == request.chain_id
    assert decoded["nonce"] == request.nonce
    assert decoded["to"] == bytes.fromhex(RECIPIENT[2:])
    assert decoded["value"] == request.value
    assert decoded["data"] == b"\x01\x02"
    assert decoded["gas"] == request.gas
    assert decoded["maxFeePerGas"] == request.max_fee_per_gas
    assert decoded["maxPriorityFeePerGas"] == request.max_priority_fee_per_gas


def test_signing_is_deterministic_so_a_resign_is_the_same_transaction(
    hot_signer: KeySigner,
) -> None:
    assert hot_signer.sign(_request()) == hot_signer.sign(_request())


def test_a_batch_is_signed_in_order_or_not_at_all(hot_signer: KeySigner) -> None:
    requests = [_request(nonce=n) for n in range(5)]
    batch = hot_signer.sign_batch(requests)
    assert batch == tuple(hot_signer.sign(r) for r in requests)
    with pytest.raises(UnsupportedTransaction):
        hot_signer.sign_batch([_request(), _Wrong(_request(), nonce=-1)])


def test_a_mixed_case_recipient_with_a_wrong_checksum_is_refused(hot_signer: KeySigner) -> None:
    checksummed = "0x000000000000000000000000000000000000dEaD"
    wrong = "0x000000000000000000000000000000000000DeAd"
    assert hot_signer.sign(_Wrong(_request(), to=checksummed)) == hot_signer.sign(_request())
    with pytest.raises(UnsupportedTransaction, match="checksum"):
        hot_signer.sign(_Wrong(_request(), to=wrong))
    with pytest.raises(UnsupportedTransaction, match="20-byte"):
        hot_signer.sign(_Wrong(_request(), to="dead"))


def test_the_hot_wallet_signer_loads_from_the_encrypted_keystore(
    tmp_path: Path, hardhat_seed: MasterSeed, hot_signer: KeySigner
) -> None:
    path = create_keystore(tmp_path / "seed.json", hardhat_seed, PASSWORD, scrypt_n=FAST_N)
    loaded = KeySigner.hot_wallet_from_keystore(path, PASSWORD, account=CHAIN_ACCOUNT)
    assert loaded.address == hot_signer.address
    assert loaded.sign(_request()) == hot_signer.sign(_request())


def test_no_secret_in_repr_str_pickle_or_errors(
    tmp_path: Path, hardhat_seed: MasterSeed, hot_signer: KeySigner
) -> None:
    secrets = _secrets(hardhat_seed)
    texts = [repr(hot_signer), str(hot_signer), f"{hot_signer!r}"]
    assert texts[0] == f"KeySigner({hot_signer.address}, <redacted>)"
    with pytest.raises(TypeError):
        pickle.dumps(hot_signer)
    path = create_keystore(tmp_path / "seed.json", hardhat_seed, PASSWORD, scrypt_n=FAST_N)
    typo = PASSWORD[::-1]
    with pytest.raises(WrongPassword) as wrong_password:
        KeySigner.hot_wallet_from_keystore(path, typo, account=CHAIN_ACCOUNT)
    key = hot_wallet_key(hardhat_seed, account=CHAIN_ACCOUNT)
    with pytest.raises(InvalidPrivateKey) as bad_key:
        KeySigner(key[:31])
    with pytest.raises(InvalidPrivateKey) as zero_key:
        KeySigner(bytes(32))
    with pytest.raises(UnsupportedTransaction) as refused:
        hot_signer.sign(_Wrong(_request(), nonce=-1))
    for caught in (wrong_password, bad_key, zero_key, refused):
        texts.append(repr(caught.value))
        texts.extend(traceback.format_exception(caught.value))
    text = "\n".join(texts)
    for secret in [*secrets, key[:31].hex(), typo]:
        assert secret not in text


def test_nothing_secret_reaches_the_logs(
    tmp_path: Path, hardhat_seed: MasterSeed, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = create_keystore(tmp_path / "seed.json", hardhat_seed, PASSWORD, scrypt_n=FAST_N)
    signer = KeySigner.hot_wallet_from_keystore(path, PASSWORD, account=CHAIN_ACCOUNT)
    signer.sign_batch([_request(nonce=n) for n in range(3)])
    logging.getLogger("custody").info("signer ready: %r", signer)
    text = caplog.text
    assert "signer ready" in text
    for secret in _secrets(hardhat_seed):
        assert secret not in text


def test_the_fake_signer_is_deterministic_records_and_can_be_unavailable() -> None:
    fake = FakeSigner("0x00000000000000000000000000000000000000aa")
    signer: Signer = fake
    first, second = signer.sign_batch([_request(nonce=1), _request(nonce=2)])
    assert first != second
    assert signer.sign(_request(nonce=1)) == first
    assert first.transaction_hash == keccak(first.raw_transaction)
    assert fake.signed == [first, second, first]
    fake.available = False
    with pytest.raises(SignerUnavailable):
        signer.sign(_request(nonce=3))
    assert len(fake.signed) == 3


class _Wrong:
    """A request with fields TransactionRequest itself would refuse or normalize."""

    def __init__(self, base: TransactionRequest, **overrides: object) -> None:
        self._base = base
        self._overrides = overrides

    def __getattr__(self, name: str) -> object:
        if name in self._overrides:
            return self._overrides[name]
        return getattr(self._base, name)


def _secrets(seed: MasterSeed) -> list[str]:
    key = hot_wallet_key(seed, account=CHAIN_ACCOUNT)
    return [
        seed.secret.hex(),
        seed.secret.hex()[:32],
        key.hex(),
        key.hex()[:32],
        PASSWORD,
        "test test test",
    ]
