"""Deposit addresses: one per wallet per chain, derived by BIP-44, allocated without races."""

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from custody import DepositKeyTree, InvalidExtendedKey, MasterSeed
from tests.factories import Factory
from tests.wallet.deposits.conftest import IsolatedChain, LiveChain
from wallet.assets.errors import UnknownChain
from wallet.assets.service import Catalogue
from wallet.database import unit_of_work
from wallet.deposits.addresses import DepositAddressBook
from wallet.deposits.errors import AddressBookError, DepositAddressesUnavailable
from wallet.deposits.service import IssuedAddress, deposit_address
from wallet.wallets.errors import UnknownWallet, WalletNotActive
from wallet.wallets.models import WalletStatus
from wallet.wallets.service import set_status


def issue(
    chain: LiveChain, tenant_id: str, wallet_id: str, name: str | None = None
) -> IssuedAddress:
    with unit_of_work(chain.sessions) as session:
        return deposit_address(
            session,
            tenant_id,
            wallet_id,
            name or chain.name,
            issuer=chain.book,
            catalogue=chain.catalogue,
        )


def test_a_wallet_gets_one_address_per_chain_and_the_same_one_again(
    factory: Factory, live_chains: dict[str, LiveChain], seed: MasterSeed
) -> None:
    wallet = factory.wallet()
    chain, l2 = live_chains["devnet"], live_chains["devnet-l2"]

    first = issue(chain, factory.tenant_id, wallet)
    again = issue(chain, factory.tenant_id, wallet)
    on_l2 = issue(l2, factory.tenant_id, wallet)

    assert first.created and not again.created and on_l2.created
    assert again.address.id == first.address.id
    assert again.address.address == first.address.address
    assert on_l2.address.address != first.address.address
    # m/44'/60'/{chain id}'/0/{index}: checked against the seed's own key tree.
    tree = DepositKeyTree(seed, account=31337)
    assert first.address.address == tree.address(first.address.derivation_index).lower()
    l2_tree = DepositKeyTree(seed, account=31338)
    assert on_l2.address.address == l2_tree.address(on_l2.address.derivation_index).lower()


def test_concurrent_requests_allocate_distinct_gap_free_indexes(
    factory: Factory, chain: LiveChain
) -> None:
    wallets = [factory.wallet() for _ in range(12)]
    results: list[IssuedAddress] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(36)

    def request(wallet_id: str) -> None:
        try:
            barrier.wait()
            issued = issue(chain, factory.tenant_id, wallet_id)
            with lock:
                results.append(issued)
        except BaseException as error:
            errors.append(error)

    # Three concurrent requests for each wallet.
    threads = [threading.Thread(target=request, args=(w,)) for w in wallets * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    by_wallet: dict[str, set[str]] = {}
    for issued in results:
        by_wallet.setdefault(issued.address.wallet_id, set()).add(issued.address.address)
    assert all(len(addresses) == 1 for addresses in by_wallet.values())
    assert sum(issued.created for issued in results) == len(wallets)
    indexes = sorted(issued.address.derivation_index for issued in results if issued.created)
    assert indexes == list(range(indexes[0], indexes[0] + len(wallets)))


def test_unknown_or_foreign_wallets_unknown_chains_and_closed_wallets_are_refused(
    factory: Factory, chain: LiveChain, catalogue: Catalogue, sessions: sessionmaker[Session]
) -> None:
    other = Factory(sessions, catalogue)
    foreign = other.wallet()
    issue(chain, other.tenant_id, foreign)
    closed = factory.wallet()
    with unit_of_work(sessions) as session:
        set_status(session, factory.tenant_id, closed, WalletStatus.CLOSED)

    with pytest.raises(UnknownWallet):
        issue(chain, factory.tenant_id, "wal_doesnotexist")
    with pytest.raises(UnknownWallet):
        issue(chain, factory.tenant_id, foreign)
    with pytest.raises(UnknownChain):
        issue(chain, factory.tenant_id, factory.wallet(), "dogechain")
    with pytest.raises(WalletNotActive):
        issue(chain, factory.tenant_id, closed)


def test_without_a_key_for_the_chain_no_address_is_issued(
    factory: Factory, chain: LiveChain
) -> None:
    wallet = factory.wallet()
    keyless = LiveChain(
        chain.name,
        chain.dev,
        chain.catalogue,
        chain.sessions,
        DepositAddressBook({}),
        chain.native,
        chain.token,
    )
    with pytest.raises(DepositAddressesUnavailable):
        issue(keyless, factory.tenant_id, wallet)


def test_an_xpub_only_book_issues_the_same_addresses(
    seed: MasterSeed, live_catalogue: Catalogue
) -> None:
    chains = list(live_catalogue.chains.values())
    from_seed = DepositAddressBook.from_seed(seed, chains)
    xpubs = {name: d.account_xpub for name, d in from_seed.derivers.items()}

    from_xpubs = DepositAddressBook.from_xpubs(xpubs, chains)

    for name in xpubs:
        assert [from_xpubs.address(name, i) for i in (0, 1, 977)] == [
            from_seed.address(name, i) for i in (0, 1, 977)
        ]
    with pytest.raises(AddressBookError, match="account"):
        DepositAddressBook.from_xpubs({"devnet": xpubs["devnet-l2"]}, chains)
    with pytest.raises(AddressBookError, match="unknown chain"):
        DepositAddressBook.from_xpubs({"nochain": xpubs["devnet"]}, chains)
    with pytest.raises(InvalidExtendedKey):
        DepositAddressBook.from_xpubs({"devnet": "xpub-not-really"}, chains)


def test_a_chain_cannot_silently_move_to_another_account(
    factory: Factory, isolated_chain: IsolatedChain, sessions: sessionmaker[Session]
) -> None:
    chain = isolated_chain()
    issue(chain, factory.tenant_id, factory.wallet())
    with unit_of_work(sessions) as session:
        session.execute(
            text("UPDATE deposit_address_counters SET bip44_account = 7 WHERE chain = :c"),
            {"c": chain.name},
        )
    with pytest.raises(AddressBookError, match="account 7"):
        issue(chain, factory.tenant_id, factory.wallet())
