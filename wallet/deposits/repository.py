"""The deposits area's queries: addresses, deposits, the chain window and cursor."""

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, func, select, text, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from wallet.deposits.models import (
    ChainCursor,
    ChainHeader,
    ChainResume,
    ChainRunState,
    ChainState,
    Deposit,
    DepositAddress,
    DepositStatus,
)

# Allocates the next index of the chain. The row stays locked until the transaction ends, so
# allocations on one chain are serialized, gap-free, and committed in index order.
ALLOCATE_INDEX = text(
    """
    INSERT INTO deposit_address_counters AS c (chain, bip44_account, next_index)
    VALUES (:chain, :account, 1)
    ON CONFLICT (chain) DO UPDATE SET next_index = c.next_index + 1
    RETURNING c.bip44_account, c.next_index - 1 AS allocated
    """
)


# Lists travel as JSON documents: psycopg sends a list parameter element by element, at
# several times the cost of encoding it as JSON.
OWNERS = text(
    "SELECT address, wallet_id, tenant_id FROM deposit_addresses WHERE chain = :chain "
    "AND address IN (SELECT jsonb_array_elements_text(CAST(:addresses AS jsonb)))"
)


EXISTING_DEPOSITS = text(
    "SELECT deposits.* FROM deposits JOIN ("
    "SELECT t ->> 0 AS tx_hash, (t ->> 1)::integer AS log_index "
    "FROM jsonb_array_elements(CAST(:transfers AS jsonb)) AS t"
    ") AS a USING (tx_hash, log_index) WHERE deposits.chain = :chain FOR UPDATE OF deposits"
)


# One JSON document for all new deposits, its record type built from the table itself.
_DEPOSIT_COLUMNS = Deposit.__table__.columns
_RECORD_TYPE = ", ".join(
    f"{column.name} {column.type.compile(dialect=postgresql.dialect())}"  # type: ignore[no-untyped-call]
    for column in _DEPOSIT_COLUMNS
)
_COLUMN_LIST = ", ".join(column.name for column in _DEPOSIT_COLUMNS)
# Each column's name in the document and the model attribute that holds it.
DEPOSIT_FIELDS = tuple((column.name, column.key) for column in _DEPOSIT_COLUMNS)


# A column the step leaves unset gets its default, as a plain INSERT would.
_VALUES = ", ".join(
    column.name
    if column.server_default is None
    else f"coalesce(d.{column.name}, {column.server_default.arg})"
    for column in _DEPOSIT_COLUMNS
)


INSERT_DEPOSITS = text(
    f"INSERT INTO deposits ({_COLUMN_LIST}) "  # noqa: S608 - the table's own column names
    f"SELECT {_VALUES} FROM jsonb_to_recordset(CAST(:deposits AS jsonb)) AS d({_RECORD_TYPE}) "
    "RETURNING id, seen_at"
)


# `seen` deposits whose block is in the stored header window.
WAITING_DEPOSITS = (
    select(Deposit)
    .join(
        ChainHeader,
        (ChainHeader.chain == Deposit.chain)
        & (ChainHeader.number == Deposit.block_number)
        & (ChainHeader.hash == Deposit.block_hash),
    )
    .where(Deposit.chain == bindparam("chain"), Deposit.status == DepositStatus.SEEN)
    .order_by(Deposit.block_number, Deposit.id)
    .with_for_update(of=Deposit)
)


LOCK_CURSOR = select(ChainCursor).where(ChainCursor.chain == bindparam("chain")).with_for_update()


_MOVE_CURSOR = """
    INSERT INTO chain_cursors (chain, block_number, block_hash)
    VALUES (:chain, :number, :hash) ON CONFLICT (chain) DO UPDATE
    SET block_number = excluded.block_number, block_hash = excluded.block_hash,
        updated_at = now()
"""


# The cursor moves to the tip, the step's headers are stored and those the window no longer
# keeps are deleted, in one statement. Headers travel as one JSON document: cheaper to send
# than a parameter array per column.
ADVANCE_WINDOW = text(
    f"""
    WITH cursor AS ({_MOVE_CURSOR}
    ), forgotten AS (
        DELETE FROM chain_headers WHERE chain = :chain AND number <= :forget_up_to
    )
    INSERT INTO chain_headers (chain, number, hash, parent_hash, timestamp)
    SELECT :chain, (h ->> 0)::bigint, h ->> 1, h ->> 2, (h ->> 3)::bigint
    FROM jsonb_array_elements(CAST(:headers AS jsonb)) AS h
    """  # noqa: S608 - a fixed statement
)


ADDRESSES_AFTER = text(
    "SELECT max(derivation_index), array_agg(address) FROM deposit_addresses "
    "WHERE chain = :chain AND derivation_index > :last"
)


MOVE_CURSOR = text(_MOVE_CURSOR)


LAST_HEADERS = (
    select(ChainHeader)
    .where(ChainHeader.chain == bindparam("chain"))
    .order_by(ChainHeader.number.desc())
    .limit(bindparam("size"))
)
FORGET_HEADERS_ABOVE = delete(ChainHeader).where(
    ChainHeader.chain == bindparam("chain"), ChainHeader.number > bindparam("number")
)
# Deposits whose block may still leave the chain: neither orphaned nor reversed yet.
_ON_CHAIN = (
    DepositStatus.SEEN,
    DepositStatus.HELD,
    DepositStatus.BELOW_MINIMUM,
    DepositStatus.CREDITED,
)
# The deposits a rollback to block `number` takes off the chain, locked, oldest first.
ON_CHAIN_DEPOSITS_ABOVE = (
    select(Deposit)
    .where(
        Deposit.chain == bindparam("chain"),
        Deposit.block_number > bindparam("number"),
        Deposit.status.in_(_ON_CHAIN),
    )
    .order_by(Deposit.block_number, Deposit.id)
    .with_for_update()
)
# The blocks at or above `lowest` that hold such deposits.
ON_CHAIN_DEPOSIT_BLOCKS = (
    select(Deposit.block_number)
    .distinct()
    .where(
        Deposit.chain == bindparam("chain"),
        Deposit.block_number >= bindparam("lowest"),
        Deposit.status.in_(_ON_CHAIN),
    )
)


# Halts a running chain (no row: running); nothing when it is halted already.
HALT = text(
    """
    INSERT INTO chain_states (chain, state, reason) VALUES (:chain, 'halted', :reason)
    ON CONFLICT (chain) DO UPDATE SET state = 'halted', reason = excluded.reason, since = now()
    WHERE chain_states.state = 'running'
    RETURNING since
    """
)
HALTED_CHAINS = (
    select(ChainState).where(ChainState.state == ChainRunState.HALTED).order_by(ChainState.chain)
)
HALTED_CHAIN = select(ChainState).where(
    ChainState.chain == bindparam("chain"), ChainState.state == ChainRunState.HALTED
)
LOCK_CHAIN_STATE = (
    select(ChainState).where(ChainState.chain == bindparam("chain")).with_for_update()
)
CHAIN_STATES = select(ChainState).where(ChainState.chain.in_(bindparam("chains", expanding=True)))
LAST_RESUMES = select(ChainResume).where(
    ChainResume.id.in_(
        select(func.max(ChainResume.id))
        .where(ChainResume.chain.in_(bindparam("chains", expanding=True)))
        .group_by(ChainResume.chain)
    )
)
TRANSACTION_TIME = select(func.now())

HELD_DEPOSITS_OF_WALLET = (
    select(Deposit)
    .where(Deposit.wallet_id == bindparam("wallet"), Deposit.status == DepositStatus.HELD)
    .order_by(Deposit.chain, Deposit.block_number, Deposit.id)
    .with_for_update()
)


def address_of(session: Session, wallet_id: str, chain: str) -> DepositAddress | None:
    query = select(DepositAddress).where(
        DepositAddress.wallet_id == wallet_id, DepositAddress.chain == chain
    )
    return session.scalars(query).one_or_none()


def wallet_addresses(session: Session, tenant_id: str, wallet_id: str) -> Sequence[DepositAddress]:
    return session.scalars(
        select(DepositAddress)
        .where(DepositAddress.wallet_id == wallet_id, DepositAddress.tenant_id == tenant_id)
        .order_by(DepositAddress.chain)
    ).all()


def find_deposit(session: Session, tenant_id: str, deposit_id: str) -> Deposit | None:
    query = select(Deposit).where(Deposit.id == deposit_id, Deposit.tenant_id == tenant_id)
    return session.scalars(query).one_or_none()


def tenant_deposits(
    session: Session,
    tenant_id: str,
    wallet_id: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[Deposit]:
    """The tenant's deposits, newest first, optionally of one wallet, after (seen_at, id)."""
    query = select(Deposit).where(Deposit.tenant_id == tenant_id)
    if wallet_id is not None:
        query = query.where(Deposit.wallet_id == wallet_id)
    if after is not None:
        query = query.where(tuple_(Deposit.seen_at, Deposit.id) < tuple_(*after))
    return session.scalars(
        query.order_by(Deposit.seen_at.desc(), Deposit.id.desc()).limit(limit)
    ).all()


def chain_tips(session: Session, chains: Collection[str]) -> dict[str, int]:
    """The cursor's block number of each of `chains` that has one."""
    query = select(ChainCursor.chain, ChainCursor.block_number).where(ChainCursor.chain.in_(chains))
    return {chain: number for chain, number in session.execute(query)}
