"""Test data builders: tenants, wallets, funded accounts and transfers, each committed."""

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from wallet.assets.service import Catalogue
from wallet.database import unit_of_work
from wallet.errors import WalletError
from wallet.idempotency.service import IdempotencyKey
from wallet.ids import new_id
from wallet.ledger import service as ledger
from wallet.ledger.repository import system_account, user_account
from wallet.ledger.service import Posting, Reason, TransactionRequest
from wallet.tenants.service import create_tenant
from wallet.transfers.service import KeyedTransfer, TransferRequest, transfers_once
from wallet.wallets.service import create_wallet

FUNDING_ACCOUNT = "bank:test"


class Factory:
    def __init__(self, sessions: sessionmaker[Session], catalogue: Catalogue) -> None:
        self.sessions = sessions
        self.catalogue = catalogue
        with unit_of_work(sessions) as session:
            self.tenant_id = create_tenant(session, new_id("tenant")).id

    def wallet(self, owner_ref: str = "user") -> str:
        with unit_of_work(self.sessions) as session:
            return create_wallet(session, self.tenant_id, owner_ref).id

    def account(self, wallet_id: str, asset: str) -> int:
        with unit_of_work(self.sessions) as session:
            return user_account(session, wallet_id, asset)

    def fund(self, wallet_id: str, asset: str, amount: int) -> int:
        """Credit the wallet from the test bank account; returns the wallet's account id."""
        with unit_of_work(self.sessions) as session:
            account = user_account(session, wallet_id, asset)
            bank = system_account(session, FUNDING_ACCOUNT, asset)
            ledger.post(
                session,
                TransactionRequest(
                    reason=Reason.ADJUSTMENT,
                    postings=[Posting(bank, -amount), Posting(account, amount)],
                ),
            )
            return account

    def transfer(
        self, request: TransferRequest, catalogue: Catalogue | None = None
    ) -> dict[str, Any]:
        """Make a transfer as the API makes it (`transfers_once`, under a key of its own).

        Returns the transfer's document; raises the error that refused it (no money moved).
        """
        key = IdempotencyKey.for_request(request.tenant_id, new_id("key"), {})
        with unit_of_work(self.sessions) as session:
            connection = session.connection().connection.driver_connection
            assert connection is not None
            (answer,) = transfers_once(
                connection, [KeyedTransfer(request, key)], catalogue or self.catalogue
            )
        if isinstance(answer, WalletError):
            raise answer
        return answer.unwrap()
