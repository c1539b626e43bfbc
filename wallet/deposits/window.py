"""The chain window and cursor: what a follower step wrote, in one transaction per step.

The watcher's step calls `record_advance` or `record_rollback` in one database transaction,
so headers, deposits, ledger entries, outbox events and the cursor always move together. The
stored headers (the last `window_size` of them) are what a reorg is detected against; the
cursor is the newest accepted block, and fences each step's writes.
"""

import json
import logging
from collections.abc import Sequence

from sqlalchemy.orm import Session

from chains import BlockHeader, ScannedBlock
from wallet.deposits import repository
from wallet.deposits.arrivals import (
    ChainAssets,
    DepositChanges,
    arrivals,
    insert_deposits,
    record_arrivals,
)
from wallet.deposits.crediting import (
    confirm,
    deposit_event,
    live_deposits_above,
    orphan_or_reverse,
)
from wallet.deposits.models import ChainCursor, DepositStatus
from wallet.events.service import emit_many
from wallet.sweeps.service import sweep_hashes
from wallet.withdrawals.service import track_blocks, unmine

logger = logging.getLogger(__name__)


def load_window(session: Session, chain: str, size: int) -> list[BlockHeader]:
    """The last `size` stored headers of the chain, oldest first."""
    rows = session.scalars(repository.LAST_HEADERS, {"chain": chain, "size": size}).all()
    return [BlockHeader(r.number, r.hash, r.parent_hash, r.timestamp) for r in reversed(rows)]


def lock_cursor(session: Session, chain: str) -> ChainCursor | None:
    """The chain's cursor, locked until the end of the transaction; None before the first step."""
    return session.scalars(repository.LOCK_CURSOR, {"chain": chain}).one_or_none()


def record_advance(
    session: Session, assets: ChainAssets, blocks: Sequence[ScannedBlock], *, window_size: int
) -> DepositChanges:
    """Accept `blocks` (linked, after the stored tip): deposits, credits, headers, cursor."""
    if not blocks:
        return DepositChanges()
    tip = blocks[-1].header
    changes = DepositChanges()
    transfers = list(arrivals(assets, blocks))
    new, fresh = (
        record_arrivals(session, assets, transfers, tip, changes) if transfers else ([], [])
    )
    # The window moves last (`repository.ADVANCE_WINDOW`): deposits waiting from earlier steps are
    # confirmed against their stored headers, which a step longer than the window would
    # otherwise drop first. Those in this step's blocks, new or re-mined, are confirmed as
    # they arrived.
    # Withdrawals first: their rows are locked before any account, as everywhere else.
    sent = [tx.tx_hash for block in blocks for tx in block.sent]
    sweeps = sweep_hashes(session, sent)
    track_blocks(session, assets.catalogue, assets.chain, blocks, tip, others=sweeps)
    arrived = [d for d, _ in fresh if d.status == DepositStatus.SEEN]
    confirmed = confirm(session, assets, tip, arrived, changes)
    insert_deposits(session, new)
    # A deposit already final when first recorded (a catch-up) was never pending: it gets
    # `deposit.credited` only, since `deposit.seen` announces a deposit that is not yet final.
    events = [
        deposit_event("deposit.seen", deposit, asset, assets.chain)
        for deposit, asset in fresh
        if deposit.status != DepositStatus.CREDITED
    ]
    by_code = assets.by_code
    events += [
        deposit_event("deposit.credited", deposit, by_code[deposit.asset], assets.chain)
        for deposit in confirmed
    ]
    emit_many(session, events)
    forget_up_to = tip.number - window_size
    # Only the headers the window keeps: a step may be longer than the window.
    headers = [
        [b.header.number, b.header.hash, b.header.parent_hash, b.header.timestamp]
        for b in blocks
        if b.header.number > forget_up_to
    ]
    session.execute(
        repository.ADVANCE_WINDOW,
        {
            "chain": assets.name,
            "number": tip.number,
            "hash": tip.hash,
            "forget_up_to": forget_up_to,
            "headers": json.dumps(headers),
        },
    )
    return changes


def record_rollback(session: Session, assets: ChainAssets, ancestor: BlockHeader) -> DepositChanges:
    """Forget the blocks above `ancestor`: orphan what they held, reverse what was credited."""
    chain = assets.name
    session.execute(repository.FORGET_HEADERS_ABOVE, {"chain": chain, "number": ancestor.number})
    session.execute(
        repository.MOVE_CURSOR,
        {"chain": chain, "number": ancestor.number, "hash": ancestor.hash},
    )
    unmine(session, assets.catalogue, assets.chain, ancestor)
    changes = DepositChanges()
    gone = live_deposits_above(session, chain, ancestor.number)
    events = orphan_or_reverse(session, assets, gone, changes)
    if not events:
        return changes
    emit_many(session, events)
    logger.warning(
        "%s: rolled back to block %d (%s): %d deposit(s) orphaned, %d reversed",
        chain,
        ancestor.number,
        ancestor.hash,
        len(changes.orphaned),
        len(changes.reversed),
    )
    return changes


def replace_window(session: Session, chain: str, headers: Sequence[BlockHeader]) -> None:
    """Store `headers` (linked, oldest first) as the chain's whole window, the cursor on the
    last: what an operator's resume rebuilds from the node."""
    tip = headers[-1]
    rows = [[h.number, h.hash, h.parent_hash, h.timestamp] for h in headers]
    session.execute(repository.FORGET_HEADERS_ABOVE, {"chain": chain, "number": -1})
    session.execute(
        repository.ADVANCE_WINDOW,
        {
            "chain": chain,
            "number": tip.number,
            "hash": tip.hash,
            "forget_up_to": -1,
            "headers": json.dumps(rows),
        },
    )
