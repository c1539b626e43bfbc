"""Each chain's run state: halted by its watcher with a reason, resumed by an operator.

A watcher that cannot go on by itself (a reorg deeper than its header window, stored state that
contradicts the chain, a node serving another chain) records the halt and its reason, with a
`chain.halted` event, and waits. `resume_chain` (`wallet chain resume`) rebuilds the header
window from the node up to a block the operator chose, undoes the deposits whose blocks left
the chain (seen ones orphaned, credited ones reversed, as a rollback does), records who resumed
the chain and why, and sets it running; the watcher follows on from that block.

Events about a chain are no one tenant's: every tenant with an endpoint subscribed to the type
(`chain.halted`, `chain.*` or `*`) gets its own copy.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from sqlalchemy.orm import Session, sessionmaker

from chains import BlockHeader, RpcClient, fetch_headers
from wallet.assets.service import Chain
from wallet.database import run_transaction, unit_of_work
from wallet.deposits import repository
from wallet.deposits.arrivals import ChainAssets, DepositChanges
from wallet.deposits.crediting import live_deposits_above, orphan_or_reverse
from wallet.deposits.errors import ResumeRefused
from wallet.deposits.models import ChainResume, ChainRunState, ChainState
from wallet.deposits.schemas import ChainStateOut
from wallet.deposits.window import lock_cursor, replace_window
from wallet.events.service import Event, emit_many
from wallet.webhooks.service import subscribed_tenants

logger = logging.getLogger(__name__)


def halted_state(session: Session, chain: str) -> ChainState | None:
    """The chain's state if it is halted; None while it runs."""
    return session.scalars(repository.HALTED_CHAIN, {"chain": chain}).one_or_none()


def halted_chains(session: Session) -> list[ChainState]:
    """Every halted chain, by name."""
    return list(session.scalars(repository.HALTED_CHAINS))


def record_halt(session: Session, chain: Chain, reason: str) -> bool:
    """Halt `chain` for `reason`, with a `chain.halted` event; False if it was halted already
    (the first halt's reason and time stand)."""
    params = {"chain": chain.name, "reason": reason}
    since = session.execute(repository.HALT, params).scalar_one_or_none()
    if since is None:
        return False
    block = repository.chain_tips(session, [chain.name]).get(chain.name)
    _announce(session, chain, ChainRunState.HALTED, reason=reason, since=since, block=block)
    return True


def _announce(
    session: Session,
    chain: Chain,
    state: ChainRunState,
    *,
    reason: str | None,
    since: datetime,
    block: int | None,
) -> None:
    """`chain.halted` or `chain.resumed` to each subscribed tenant."""
    event_type = "chain.halted" if state is ChainRunState.HALTED else "chain.resumed"
    payload = ChainStateOut(
        chain=chain.name,
        chain_id=chain.chain_id,
        state=state,
        reason=reason,
        since=since,
        block_number=block,
    )
    tenants = subscribed_tenants(session, event_type)
    emit_many(session, [Event(tenant, event_type, payload) for tenant in tenants])


@dataclass(frozen=True)
class ChainStatus:
    """A chain as the database knows it: cursor, state, and the last resume."""

    chain: str
    cursor: int | None
    state: ChainRunState
    reason: str | None
    since: datetime | None
    last_resume: ChainResume | None


def chain_statuses(session: Session, chains: Sequence[str]) -> list[ChainStatus]:
    """The stored status of each of `chains`, in order."""
    cursors = repository.chain_tips(session, chains)
    params = {"chains": list(chains)}
    states = {s.chain: s for s in session.scalars(repository.CHAIN_STATES, params)}
    resumes = {r.chain: r for r in session.scalars(repository.LAST_RESUMES, params)}
    statuses = []
    for chain in chains:
        state = states.get(chain)
        statuses.append(
            ChainStatus(
                chain=chain,
                cursor=cursors.get(chain),
                state=ChainRunState.RUNNING if state is None else ChainRunState(state.state),
                reason=None if state is None else state.reason,
                since=None if state is None else state.since,
                last_resume=resumes.get(chain),
            )
        )
    return statuses


@dataclass(frozen=True)
class ResumeRequest:
    """An operator's decision: follow the chain again from block `from_block`, and why."""

    from_block: int
    operator: str
    reason: str


def resume_chain(
    sessions: sessionmaker[Session],
    rpc: RpcClient,
    assets: ChainAssets,
    request: ResumeRequest,
    *,
    window_size: int,
) -> tuple[ChainResume, DepositChanges]:
    """Rebuild the halted chain's header window from the node up to `from_block`, undo the
    deposits above it whose blocks left the chain, record the resume, set the chain running.

    Refused (ResumeRefused, nothing changed) when the chain is not halted, the node serves
    another chain or has no block `from_block`, or a recorded deposit at or below it is no
    longer on the chain (the fork is below the block chosen).
    """
    chain = assets.chain
    if not request.reason.strip():
        raise ResumeRefused("a resume needs a reason")
    if request.from_block < 0:
        raise ResumeRefused("the block to resume from must be 0 or above")
    # Checked against the chain over window_size blocks below the one chosen: the depth at
    # which the watcher itself follows reorgs. Read before the node is asked, checked again
    # under lock.
    lowest = max(0, request.from_block - window_size + 1)
    with unit_of_work(sessions) as session:
        if halted_state(session, chain.name) is None:
            raise ResumeRefused(f"{chain.name} is not halted")
        deposit_blocks = _live_deposit_blocks(session, chain.name, lowest)
    window_blocks = range(lowest, request.from_block + 1)
    window, canonical = _read_node(rpc, chain, window_blocks, deposit_blocks)

    def resume(session: Session) -> tuple[ChainResume, DepositChanges]:
        state = session.scalars(repository.LOCK_CHAIN_STATE, {"chain": chain.name}).one_or_none()
        if state is None or state.state != ChainRunState.HALTED:
            raise ResumeRefused(f"{chain.name} is not halted")
        lock_cursor(session, chain.name)
        live = live_deposits_above(session, chain.name, lowest - 1)
        if any(d.block_number not in canonical for d in live):
            raise ResumeRefused(f"{chain.name}: deposits were recorded meanwhile; try again")
        off_chain = [d for d in live if canonical[d.block_number] != d.block_hash]
        kept_below = [d for d in off_chain if d.block_number <= request.from_block]
        if kept_below:
            first = kept_below[0]
            raise ResumeRefused(
                f"{chain.name}: deposit {first.id} in block {first.block_number} "
                f"({first.block_hash}) is no longer on the chain, and {len(kept_below)} in all "
                f"at or below block {request.from_block}: resume from below block "
                f"{first.block_number}"
            )
        changes = DepositChanges()
        events = orphan_or_reverse(session, assets, off_chain, changes)
        replace_window(session, chain.name, window)
        now = session.execute(repository.TRANSACTION_TIME).scalar_one()
        assert state.reason is not None  # a halted state has its reason
        resumed = ChainResume(
            chain=chain.name,
            from_block=request.from_block,
            operator=request.operator,
            reason=request.reason,
            halt_reason=state.reason,
            halted_since=state.since,
            orphaned=len(changes.orphaned),
            reversed=len(changes.reversed),
            resumed_at=now,
        )
        session.add(resumed)
        state.state, state.reason, state.since = ChainRunState.RUNNING, None, now
        emit_many(session, events)
        _announce(
            session, chain, ChainRunState.RUNNING, reason=None, since=now, block=request.from_block
        )
        session.flush()
        return resumed, changes

    resumed, changes = run_transaction(sessions, resume)
    logger.warning(
        "%s: resumed from block %d by %s (%s): %d deposit(s) orphaned, %d reversed",
        chain.name,
        request.from_block,
        request.operator,
        request.reason,
        len(changes.orphaned),
        len(changes.reversed),
    )
    return resumed, changes


def _live_deposit_blocks(session: Session, chain: str, lowest: int) -> set[int]:
    params = {"chain": chain, "lowest": lowest}
    return set(session.scalars(repository.ON_CHAIN_DEPOSIT_BLOCKS, params))


def _read_node(
    rpc: RpcClient, chain: Chain, window: range, deposit_blocks: set[int]
) -> tuple[list[BlockHeader], Mapping[int, str | None]]:
    """The node's linked headers of `window`, and the canonical hash at each deposit block
    (None above the node's head)."""
    served = int(rpc.call("eth_chainId"), 16)
    if served != chain.chain_id:
        raise ResumeRefused(f"the node at {rpc.url} serves chain {served}, not {chain.chain_id}")
    numbers = sorted(set(window) | deposit_blocks)
    found = dict(zip(numbers, fetch_headers(rpc, numbers), strict=True))
    headers = [found[n] for n in window]
    if headers[-1] is None:
        raise ResumeRefused(f"the node has no block {window[-1]} (yet)")
    linked = [h for h in headers if h is not None]
    if len(linked) != len(headers) or any(b.parent_hash != a.hash for a, b in pairwise(linked)):
        raise ResumeRefused("the node's chain changed while it was read; try again")
    canonical = {n: None if h is None else h.hash for n, h in found.items()}
    return linked, canonical
