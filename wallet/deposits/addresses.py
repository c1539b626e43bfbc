"""Which address a deposit index has on each chain: one BIP-44 account per chain.

Chain `c` uses account `c.chain_id` (m/44'/60'/{chain_id}'/0/{index}): the mapping follows
from the configuration alone, so an address-issuing process needs nothing but each chain's
account-level xpub, and two chains never share an address space. A chain id must therefore
never be reused for another chain; the account a chain first issued addresses under is
recorded in the database and checked on every allocation.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from custody import DepositKeyTree, MasterSeed, XpubAddressDeriver
from custody.hd import MAX_INDEX
from wallet.assets import Chain


class AddressBookError(ValueError):
    """The deposit address configuration is unusable (a process-start error, not a request's)."""


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
