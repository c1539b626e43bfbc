"""Settings of deposit address issuance, read from `WALLET_*` variables like the main settings.

They belong in `wallet.settings.Settings`; until they are merged there, this class reads them
itself. It is built by process entry points, never at import.
"""

import logging
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from custody import MasterSeed, load_seed
from wallet.assets import Catalogue
from wallet.deposits.addresses import DepositAddressBook

logger = logging.getLogger(__name__)


class DepositSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WALLET_", env_file=".env", extra="ignore")

    deposit_xpubs: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "JSON object of chain name to account-level xpub (m/44'/60'/{chain_id}'): lets a "
            "process issue deposit addresses without the seed. Preferred for the API."
        ),
    )
    seed_keystore: Path | None = Field(
        default=None, description="The encrypted master seed keystore (custody.create_keystore)."
    )
    seed_password: SecretStr | None = Field(default=None, description="The keystore's password.")
    dev_mnemonic: SecretStr | None = Field(
        default=None,
        description=(
            "Embedded profile only: a BIP-39 mnemonic in the environment instead of a keystore. "
            "Never use it for real funds."
        ),
    )


def load_address_book(settings: DepositSettings, catalogue: Catalogue) -> DepositAddressBook:
    """The deposit address book of this process: xpubs, else the keystore, else a dev mnemonic.

    With none of them configured the book is empty and issuing an address is refused.
    """
    chains = catalogue.chains.values()
    if settings.deposit_xpubs:
        return DepositAddressBook.from_xpubs(settings.deposit_xpubs, chains)
    if settings.seed_keystore is not None:
        if settings.seed_password is None:
            raise ValueError("WALLET_SEED_KEYSTORE is set but WALLET_SEED_PASSWORD is not")
        seed = load_seed(settings.seed_keystore, settings.seed_password.get_secret_value())
        return DepositAddressBook.from_seed(seed, chains)
    if settings.dev_mnemonic is not None:
        logger.warning(
            "!!! DEPOSIT ADDRESSES COME FROM WALLET_DEV_MNEMONIC, A SEED IN THE ENVIRONMENT. "
            "This is for the embedded development profile only: never send real funds to "
            "these addresses. Use WALLET_SEED_KEYSTORE or WALLET_DEPOSIT_XPUBS in production. !!!"
        )
        seed = MasterSeed.from_mnemonic(settings.dev_mnemonic.get_secret_value())
        return DepositAddressBook.from_seed(seed, chains)
    logger.warning("no deposit address seed or xpubs configured: deposit addresses are disabled")
    return DepositAddressBook({})
