"""The periodic job that sends payouts and settles those whose answer was lost.

`send_and_resolve_payouts` owns its transactions and is tested without Celery.
"""

import logging
from collections.abc import Callable
from typing import Final

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from fiat import BankProvider
from wallet.assets.service import Catalogue
from wallet.database import run_transaction
from wallet.payins.tasks import BankTaskContext
from wallet.payouts.repository import unresolved_payout_ids
from wallet.payouts.service import resolve_payout

log = logging.getLogger(__name__)

SEND_PAYOUTS: Final = "wallet.payouts.send_and_resolve"


def send_and_resolve_payouts(
    sessions: sessionmaker[Session], bank: BankProvider, catalogue: Catalogue, retry_after: float
) -> int:
    """Send the new payouts, and bring those whose last attempt began more than `retry_after`
    seconds ago to the provider's word; returns how many were looked at."""
    payout_ids = run_transaction(sessions, lambda s: unresolved_payout_ids(s, retry_after))
    for payout_id in payout_ids:
        resolve_payout(sessions, bank, payout_id, catalogue)
    return len(payout_ids)


def register_tasks(app: Celery, context: Callable[[], BankTaskContext]) -> None:
    def send_task() -> None:
        current = context()
        if current.bank is None:
            return
        handled = send_and_resolve_payouts(
            current.sessions, current.bank, current.catalogue, current.resolve_after
        )
        if handled:
            log.info("asked the bank about %d payout(s)", handled)

    app.task(name=SEND_PAYOUTS, ignore_result=True, shared=False)(send_task)
