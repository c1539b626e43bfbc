"""Deposit address and key derivation against eth-account, BIP-32 and BIP-39 vectors."""

import pickle

import pytest
from coincurve import PublicKey
from eth_account import Account
from eth_account.hdaccount import key_from_seed
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from custody import (
    AddressDeriver,
    DepositKeyTree,
    ExtendedPrivateKey,
    ExtendedPublicKey,
    IndexOutOfRange,
    InvalidChildKey,
    InvalidExtendedKey,
    InvalidMnemonic,
    InvalidSeed,
    MasterSeed,
    XpubAddressDeriver,
    checksum_address,
    deposit_path,
    generate_mnemonic,
    is_valid_mnemonic,
)
from custody.hd import (
    HARDENED,
    MAX_INDEX,
    SECP256K1_ORDER,
    _checked_tweak,
    _private_child,
    _public_child,
)

LARGE_INDEXES = (1000, 2**20, 10**9, MAX_INDEX - 1, MAX_INDEX)

# Hardhat/Anvil's published default accounts for the test mnemonic.
HARDHAT_ACCOUNTS = (
    (
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    ),
    (
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    ),
    (
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    ),
)

# From eth-account's own Account.from_mnemonic documentation.
HEALTH_MNEMONIC = "health embark april buyer eternal leopard want before nominee head thing tackle"
HEALTH_ADDRESSES = (
    "0x61Cc15522D06983Ac7aADe23f9d5433d38e78195",
    "0x1240460F6E370f28079E5F9B52f9DcB759F051b7",
    "0xd30dC9f996539826C646Eb48bb45F6ee1D1474af",
    "0x47e64beb58c9A469c5eD086aD231940676b44e7C",
    "0x6D39032ffEF9987988a069F52EFe4d95D0770555",
    "0x3836A6530D1889853b047799Ecd8827255072e77",
    "0xed5490dEfF8d8FfAe45cb4066C3daC7C6BFF6a22",
    "0xf04F9Ff322799253bcC6B12762AD127570a092c5",
    "0x900F7fa9fbe85BB25b6cdB94Da24D807f7feb213",
    "0xa248e118b0D19010387b1B768686cd9B473FA137",
)
CORAL_MNEMONIC = (
    "coral allow abandon recipe top tray caught video climb similar prepare bracket "
    "antenna rubber announce gauge volume hub hood burden skill immense add acid"
)
CORAL_ADDRESS_0 = "0x9AdA5dAD14d925f4df1378409731a9B71Bc8569d"

# BIP-39 reference vector (passphrase "TREZOR").
ABANDON_MNEMONIC = " ".join(["abandon"] * 11 + ["about"])
ABANDON_TREZOR_SEED = (
    "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e5349553"
    "1f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04"
)

# BIP-32 test vector 1: seed and the xpubs along m/0'/1/2'/2/1000000000.
BIP32_SEED = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
BIP32_XPUBS = (
    "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8",
    "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw",
    "xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ",
    "xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5",
    "xpub6FHa3pjLCk84BayeJxFW2SP4XRrFd1JYnxeLeU8EqN3vDfZmbqBqaGJAyiLjTAwm6ZLRQUMv1ZACTj37sR62cfN7fe5JnJ7dh8zL4fiyLHV",
    "xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy",
)
BIP32_PATH = (0 | HARDENED, 1, 2 | HARDENED, 2, 1_000_000_000)


def test_hardhat_accounts_are_the_published_ones(hardhat_tree: DepositKeyTree) -> None:
    for index, (address, key_hex) in enumerate(HARDHAT_ACCOUNTS):
        assert hardhat_tree.address(index) == address
        assert hardhat_tree.private_key(index).hex() == key_hex


def test_addresses_and_keys_equal_eth_account(
    eth_account_hd: type[Account], hardhat_mnemonic: str, hardhat_tree: DepositKeyTree
) -> None:
    for index in (*range(51), *LARGE_INDEXES):
        reference = eth_account_hd.from_mnemonic(
            hardhat_mnemonic, account_path=f"m/44'/60'/0'/0/{index}"
        )
        assert hardhat_tree.address(index) == reference.address
        assert hardhat_tree.private_key(index) == bytes(reference.key)


@pytest.mark.parametrize("account", [1, 7, MAX_INDEX])
def test_other_accounts_equal_eth_account(
    eth_account_hd: type[Account], hardhat_mnemonic: str, hardhat_seed: MasterSeed, account: int
) -> None:
    tree = DepositKeyTree(hardhat_seed, account=account)
    for index in (0, 1, 2, MAX_INDEX):
        path = f"m/44'/60'/{account}'/0/{index}"
        reference = eth_account_hd.from_mnemonic(hardhat_mnemonic, account_path=path)
        assert tree.path(index) == path
        assert tree.address(index) == reference.address
        assert tree.private_key(index) == bytes(reference.key)


def test_accounts_have_disjoint_addresses(hardhat_seed: MasterSeed) -> None:
    first = DepositKeyTree(hardhat_seed, account=0)
    second = DepositKeyTree(hardhat_seed, account=1)
    assert {first.address(i) for i in range(20)}.isdisjoint(second.address(i) for i in range(20))


def test_eth_account_documented_vectors() -> None:
    health = DepositKeyTree(MasterSeed.from_mnemonic(HEALTH_MNEMONIC), account=0)
    assert tuple(health.address(i) for i in range(10)) == HEALTH_ADDRESSES
    coral = DepositKeyTree(MasterSeed.from_mnemonic(CORAL_MNEMONIC), account=0)
    assert coral.address(0) == CORAL_ADDRESS_0


def test_passphrase_changes_the_seed_as_bip39_says(eth_account_hd: type[Account]) -> None:
    seed = MasterSeed.from_mnemonic(ABANDON_MNEMONIC, "TREZOR")
    assert seed.secret.hex() == ABANDON_TREZOR_SEED
    tree = DepositKeyTree(seed, account=0)
    reference = eth_account_hd.from_mnemonic(ABANDON_MNEMONIC, passphrase="TREZOR")
    assert tree.address(0) == reference.address
    assert MasterSeed.from_mnemonic(ABANDON_MNEMONIC) != seed


def test_mnemonic_whitespace_is_normalized(hardhat_mnemonic: str, hardhat_seed: MasterSeed) -> None:
    messy = "  " + hardhat_mnemonic.replace(" ", " \n\t ") + "\n"
    assert MasterSeed.from_mnemonic(messy) == hardhat_seed


@pytest.mark.parametrize(
    "mnemonic",
    [
        " ".join(["test"] * 12),  # every word known, checksum wrong
        " ".join(["test"] * 11),  # wrong word count
        "test test test test test test test test test test test notaword",
        "",
    ],
)
def test_invalid_mnemonics_are_rejected_without_echoing_words(mnemonic: str) -> None:
    assert not is_valid_mnemonic(mnemonic)
    with pytest.raises(InvalidMnemonic) as caught:
        MasterSeed.from_mnemonic(mnemonic)
    assert "test" not in str(caught.value)
    assert "notaword" not in str(caught.value)
    assert caught.value.__context__ is None
    assert caught.value.__cause__ is None


def test_generated_mnemonics_are_valid() -> None:
    mnemonic = generate_mnemonic()
    assert len(mnemonic.split()) == 24
    assert is_valid_mnemonic(mnemonic)
    assert len(generate_mnemonic(12).split()) == 12
    with pytest.raises(ValueError):
        generate_mnemonic(13)


def test_seed_must_be_64_bytes() -> None:
    with pytest.raises(InvalidSeed):
        MasterSeed(bytes(32))


def test_bip32_vector_1_private_then_public_derivation() -> None:
    key = ExtendedPrivateKey.from_seed(BIP32_SEED)
    assert key.extended_public_key.to_xpub() == BIP32_XPUBS[0]
    for child_number, xpub in zip(BIP32_PATH, BIP32_XPUBS[1:], strict=True):
        key = key.child(child_number)
        assert key.extended_public_key.to_xpub() == xpub


def test_bip32_vector_1_public_only_derivation() -> None:
    # m/0'/1 from xpub(m/0'), and m/0'/1/2'/2/1000000000 from xpub(m/0'/1/2'/2).
    assert ExtendedPublicKey.from_xpub(BIP32_XPUBS[1]).child(1).to_xpub() == BIP32_XPUBS[2]
    assert (
        ExtendedPublicKey.from_xpub(BIP32_XPUBS[4]).child(1_000_000_000).to_xpub() == BIP32_XPUBS[5]
    )


def test_xpub_serialization_round_trips() -> None:
    for xpub in BIP32_XPUBS:
        assert ExtendedPublicKey.from_xpub(xpub).to_xpub() == xpub
        assert str(ExtendedPublicKey.from_xpub(xpub)) == xpub


def test_xpub_only_deriver_gives_the_tree_addresses(hardhat_tree: DepositKeyTree) -> None:
    deriver: AddressDeriver = XpubAddressDeriver(hardhat_tree.account_xpub)
    with_keys: AddressDeriver = hardhat_tree
    for index in (*range(51), *LARGE_INDEXES):
        assert deriver.address(index) == with_keys.address(index)
    assert isinstance(deriver, XpubAddressDeriver)
    assert deriver.account == 0
    assert deriver.account_xpub == hardhat_tree.account_xpub
    assert repr(deriver) == "XpubAddressDeriver(account=0)"


def test_xpub_deriver_knows_its_account(hardhat_seed: MasterSeed) -> None:
    tree = DepositKeyTree(hardhat_seed, account=5)
    deriver = XpubAddressDeriver(tree.account_xpub)
    assert deriver.account == 5
    assert deriver.path(9) == "m/44'/60'/5'/0/9" == deposit_path(5, 9)
    assert deriver.address(9) == tree.address(9)


def test_xpub_deriver_rejects_keys_not_at_account_level() -> None:
    with pytest.raises(InvalidExtendedKey):
        XpubAddressDeriver(BIP32_XPUBS[0])  # depth 0
    with pytest.raises(InvalidExtendedKey):
        XpubAddressDeriver(BIP32_XPUBS[4])  # depth 4, non-hardened


@pytest.mark.parametrize(
    "text",
    [
        BIP32_XPUBS[1][:-1] + ("1" if BIP32_XPUBS[1][-1] != "1" else "2"),  # bad checksum
        BIP32_XPUBS[1].replace("x", "0", 1),  # '0' is not base58
        "",
        "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi",
    ],
)
def test_malformed_xpubs_are_rejected(text: str) -> None:
    with pytest.raises(InvalidExtendedKey):
        ExtendedPublicKey.from_xpub(text)


def test_xpub_deriver_cannot_see_the_purpose_and_coin_levels() -> None:
    # An xpub records only its depth and own child number: m/0'/1/2' passes as account 2.
    assert XpubAddressDeriver(BIP32_XPUBS[3]).account == 2


@pytest.mark.parametrize("index", [-1, MAX_INDEX + 1, 2**32, True])
def test_indexes_outside_the_soft_range_are_rejected(
    hardhat_tree: DepositKeyTree, index: int
) -> None:
    with pytest.raises(IndexOutOfRange):
        hardhat_tree.address(index)
    with pytest.raises(IndexOutOfRange):
        hardhat_tree.private_key(index)
    with pytest.raises(IndexOutOfRange):
        hardhat_tree.address_deriver().address(index)


@pytest.mark.parametrize("account", [-1, MAX_INDEX + 1])
def test_accounts_outside_the_range_are_rejected(hardhat_seed: MasterSeed, account: int) -> None:
    with pytest.raises(IndexOutOfRange):
        DepositKeyTree(hardhat_seed, account=account)


def test_invalid_child_tweak_is_reported_not_skipped() -> None:
    # eth-account silently moves on to index+1, which would give two wallets one address.
    for il in (SECP256K1_ORDER, SECP256K1_ORDER + 5, 2**256 - 1):
        with pytest.raises(InvalidChildKey) as caught:
            _checked_tweak(il.to_bytes(32, "big"), 42)
        assert caught.value.index == 42
    assert _checked_tweak((SECP256K1_ORDER - 1).to_bytes(32, "big"), 42)


def test_child_at_infinity_or_zero_is_reported() -> None:
    tweak = 123456789
    parent_secret = SECP256K1_ORDER - tweak
    parent_point = PublicKey.from_valid_secret(parent_secret.to_bytes(32, "big"))
    with pytest.raises(InvalidChildKey):
        _public_child(parent_point, tweak.to_bytes(32, "big"), 7)
    with pytest.raises(InvalidChildKey):
        _private_child(parent_secret, tweak.to_bytes(32, "big"), 7)


def test_secrets_are_redacted(hardhat_seed: MasterSeed, hardhat_tree: DepositKeyTree) -> None:
    master = ExtendedPrivateKey.from_seed(hardhat_seed.secret)
    secrets_hex = (
        hardhat_seed.secret.hex(),
        hardhat_tree.private_key(0).hex(),
        master.secret.to_bytes(32, "big").hex(),
    )
    for holder in (hardhat_seed, hardhat_tree, master):
        text = repr(holder) + str(holder)
        assert "redacted" in text
        assert not any(secret in text for secret in secrets_hex)
        assert str(master.secret) not in text
        with pytest.raises(TypeError):
            pickle.dumps(holder)


@settings(max_examples=25, deadline=None)
@given(index=st.integers(0, MAX_INDEX), account=st.integers(0, 3))
def test_random_indexes_match_eth_account(
    hardhat_seed: MasterSeed, index: int, account: int
) -> None:
    tree = DepositKeyTree(hardhat_seed, account=account)
    reference_key = key_from_seed(hardhat_seed.secret, f"m/44'/60'/{account}'/0/{index}")
    assert tree.private_key(index) == reference_key
    assert tree.address(index) == Account.from_key(reference_key).address
    assert XpubAddressDeriver(tree.account_xpub).address(index) == tree.address(index)


@settings(max_examples=50, deadline=None)
@given(raw=st.binary(min_size=20, max_size=20))
def test_checksum_address_is_eip55(raw: bytes) -> None:
    assert checksum_address(raw) == to_checksum_address(raw)
