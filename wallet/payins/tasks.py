"""The periodic job that settles pay-ins whose provider answer was lost or never came.

`resolve_unresolved_payins` owns its transactions and is tested without Celery; the task only
finds the process's database and bank provider.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from fiat import BankProvider
from wallet.assets.service import Catalogue
from wallet.database import run_transaction
from wallet.payins.repository import unresolved_payin_ids
from wallet.payins.service import resolve_payin

log = logging.getLogger(__name__)

RESOLVE_PAYINS: Final = "wallet.payins.resolve_unresolved"


@dataclass(frozen=True)
class BankTaskContext:
    """What the bank tasks of one worker process work with; `bank` None: fiat is off."""

    sessions: sessionmaker[Session]
    bank: BankProvider | None
    catalogue: Catalogue
    resolve_after: float


def resolve_unresolved_payins(
    sessions: sessionmaker[Session], bank: BankProvider, catalogue: Catalogue, older_than: float
) -> int:
    """Ask the provider about each pay-in left `creating` or `unknown` longer than `older_than`
    seconds (a lost answer, or a process killed mid-call); returns how many were asked about."""
    payin_ids = run_transaction(sessions, lambda s: unresolved_payin_ids(s, older_than))
    for payin_id in payin_ids:
        resolve_payin(sessions, bank, payin_id, catalogue)
    return len(payin_ids)


def register_tasks(app: Celery, context: Callable[[], BankTaskContext]) -> None:
    def resolve_task() -> None:
        current = context()
        if current.bank is None:
            return
        asked = resolve_unresolved_payins(
            current.sessions, current.bank, current.catalogue, current.resolve_after
        )
        if asked:
            log.info("asked the bank about %d unresolved pay-in(s)", asked)

    app.task(name=RESOLVE_PAYINS, ignore_result=True, shared=False)(resolve_task)
