"""Which address a deposit index has on each chain: one BIP-44 account per chain.

Chain `c` uses account `c.chain_id` (m/44'/60'/{chain_id}'/0/{index}): the mapping follows
from the configuration alone, so an address-issuing process needs nothing but each chain's
account-level xpub, and two chains never share an address space. A chain id must therefore
never be reused for another chain; the account a chain first issued addresses under is
recorded in the database and checked on every allocation.
"""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from custody import DepositKeyTree, MasterSeed, XpubAddressDeriver, load_seed
from custody.hd import MAX_INDEX
from wallet.assets.service import Catalogue, Chain
from wallet.deposits.errors import AddressBookError
from wallet.settings import Settings

logger = logging.getLogger(__name__)


def bip44_account(chain: Chain) -> int:
    """The BIP-44 account number of the chain's deposit addresses."""
    if not 0 <= chain.chain_id <= MAX_INDEX:
        raise AddressBookError(
            f"chain {chain.name}: chain id {chain.chain_id} does not fit a BIP-44 account number"
        )
    return chain.chain_id


@dataclass(frozen=True)
class DepositAddressBook:
    """Address derivers per chain name, each holding an account xpub and no private key."""

    derivers: Mapping[str, XpubAddressDeriver]

    @classmethod
    def from_seed(cls, seed: MasterSeed, chains: Iterable[Chain]) -> "DepositAddressBook":
        """Derive each chain's account xpub from the master seed; the seed is not kept."""
        derivers = {
            chain.name: DepositKeyTree(seed, account=bip44_account(chain)).address_deriver()
            for chain in chains
        }
        return cls(derivers)

    @classmethod
    def from_xpubs(cls, xpubs: Mapping[str, str], chains: Iterable[Chain]) -> "DepositAddressBook":
        """Use account-level xpubs given per chain name; each must sit at the chain's account."""
        by_name = {chain.name: chain for chain in chains}
        derivers: dict[str, XpubAddressDeriver] = {}
        for name, xpub in xpubs.items():
            chain = by_name.get(name)
            if chain is None:
                raise AddressBookError(f"an xpub is configured for unknown chain {name!r}")
            deriver = XpubAddressDeriver(xpub)
            if deriver.account != bip44_account(chain):
                raise AddressBookError(
                    f"the xpub for chain {name} is at account {deriver.account}, "
                    f"expected {bip44_account(chain)} (m/44'/60'/{bip44_account(chain)}')"
                )
            derivers[name] = deriver
        return cls(derivers)

    def issues_on(self, chain: str) -> bool:
        return chain in self.derivers

    def account(self, chain: str) -> int:
        return self._deriver(chain).account

    def address(self, chain: str, index: int) -> str:
        """The deposit address at `index` on `chain`, lowercase hex."""
        return self._deriver(chain).address(index).lower()

    def _deriver(self, chain: str) -> XpubAddressDeriver:
        try:
            return self.derivers[chain]
        except KeyError:
            raise AddressBookError(f"no deposit address deriver for chain {chain!r}") from None


def load_address_book(settings: Settings, catalogue: Catalogue) -> DepositAddressBook:
    """The deposit address book of this process: xpubs, else the keystore, else a dev mnemonic.

    With none of them configured the book is empty and issuing an address is refused.
    """
    chains = catalogue.chains.values()
    if settings.deposit_xpubs:
        return DepositAddressBook.from_xpubs(settings.deposit_xpubs, chains)
    seed = load_master_seed(settings)
    if seed is None:
        logger.warning(
            "no deposit address seed or xpubs configured: deposit addresses are disabled"
        )
        return DepositAddressBook({})
    return DepositAddressBook.from_seed(seed, chains)


def load_master_seed(settings: Settings) -> MasterSeed | None:
    """The master seed from its keystore, else (the embedded profile only) from a mnemonic in
    the environment; None when neither is configured."""
    if settings.seed_keystore is not None:
        if settings.seed_password is None:
            raise ValueError("WALLET_SEED_KEYSTORE is set but WALLET_SEED_PASSWORD is not")
        return load_seed(settings.seed_keystore, settings.seed_password.get_secret_value())
    if settings.dev_mnemonic is not None:
        logger.warning(
            "!!! KEYS COME FROM WALLET_DEV_MNEMONIC, A SEED IN THE ENVIRONMENT. "
            "This is for the embedded development profile only: never send real funds to "
            "these addresses. Use WALLET_SEED_KEYSTORE (and WALLET_DEPOSIT_XPUBS for the API) "
            "in production. !!!"
        )
        return MasterSeed.from_mnemonic(settings.dev_mnemonic.get_secret_value())
    return None
