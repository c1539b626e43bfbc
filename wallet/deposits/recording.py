"""Recording what a chain follower reports: headers, the cursor, deposits and their money.

The watcher's step calls these in one database transaction per follower step, so headers,
deposits, ledger entries, outbox events and the cursor always move together. The life of a
deposit:

- first seen in a canonical block: `seen`, with a ledger hold from `chain:<chain>` to the
  wallet (pending in, not spendable); or `below_minimum`, recorded and reported, no money;
- `confirmations` (tip - block + 1) reach the chain's requirement while its block is still in
  the stored header window: `credited`, posted once with the external reference
  ('deposit', chain:tx:log_index), unique in the ledger;
- its block is rolled back before that: `orphaned`, hold voided; after that: `reversed` by a
  compensating ledger transaction, with a `deposit.reversed` alert;
- the same transfer seen again in another block (re-mined): back to `seen`, count restarted.
"""

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, text
from sqlalchemy.orm import Session

from chains import BlockHeader, ScannedBlock
from wallet.assets.service import Asset, AssetKind, Catalogue, Chain
from wallet.deposits.models import (
    DEPOSIT_PREFIX,
    ChainCursor,
    ChainHeader,
    Deposit,
    DepositStatus,
)
from wallet.events.service import Event, emit_many
from wallet.ids import new_id
from wallet.ledger import service as postings
from wallet.ledger.errors import InsufficientFunds
from wallet.ledger.repository import balance, system_account, user_accounts
from wallet.ledger.service import ExternalReference, Posting, Reason, TransactionRequest

logger = logging.getLogger(__name__)

EXTERNAL_KIND = "deposit"


class InconsistentChainState(RuntimeError):
    """The stored chain state contradicts what the follower reports; a person must look."""


@dataclass(frozen=True)
class ChainAssets:
    """One chain's configuration as the recorder needs it: the chain and its assets."""

    chain: Chain
    native: Asset
    tokens: Mapping[str, Asset]
    """ERC-20 assets by lowercase contract address (only those with an address configured)."""

    @classmethod
    def of(cls, catalogue: Catalogue, chain_name: str) -> "ChainAssets":
        chain = catalogue.chain(chain_name)
        assets = list(catalogue.assets_on(chain_name))
        natives = [a for a in assets if a.kind is AssetKind.NATIVE]
        if len(natives) != 1:
            raise ValueError(f"chain {chain_name} needs exactly one native asset in the catalogue")
        tokens = {}
        for asset in assets:
            if asset.kind is AssetKind.ERC20:
                if asset.contract_address is None:
                    logger.warning(
                        "asset %s on %s has no contract_address: its deposits are not watched",
                        asset.code,
                        chain_name,
                    )
                    continue
                tokens[asset.contract_address.lower()] = asset
        return cls(chain=chain, native=natives[0], tokens=tokens)

    @property
    def name(self) -> str:
        return self.chain.name

    @property
    def by_code(self) -> dict[str, Asset]:
        return {self.native.code: self.native} | {a.code: a for a in self.tokens.values()}

    def follower_tokens(self) -> dict[str, str]:
        """Contract address to asset code, as `chains.ChainFollower` takes them."""
        return {address: asset.code for address, asset in self.tokens.items()}


@dataclass
class DepositChanges:
    """What a step did to deposits, by deposit id (for logs, tests and benchmarks)."""

    seen: list[str] = field(default_factory=list)
    below_minimum: list[str] = field(default_factory=list)
    credited: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    reversed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any((self.seen, self.below_minimum, self.credited, self.orphaned, self.reversed))


@dataclass(frozen=True)
class _Arrival:
    """A transfer to a deposit address as the follower reported it."""

    tx_hash: str
    log_index: int
    asset: Asset
    amount: int
    from_address: str
    to_address: str
    block_number: int
    block_hash: str


# --- the header window and the cursor ---------------------------------------------------


def load_window(session: Session, chain: str, size: int) -> list[BlockHeader]:
    """The last `size` stored headers of the chain, oldest first."""
    rows = session.scalars(
        select(ChainHeader)
        .where(ChainHeader.chain == chain)
        .order_by(ChainHeader.number.desc())
        .limit(size)
    ).all()
    return [BlockHeader(r.number, r.hash, r.parent_hash, r.timestamp) for r in reversed(rows)]


_LOCK_CURSOR = select(ChainCursor).where(ChainCursor.chain == bindparam("chain")).with_for_update()


def lock_cursor(session: Session, chain: str) -> ChainCursor | None:
    """The chain's cursor, locked until the end of the transaction; None before the first step."""
    return session.scalars(_LOCK_CURSOR, {"chain": chain}).one_or_none()


def _move_cursor(session: Session, chain: str, tip: BlockHeader) -> None:
    session.execute(
        text(
            "INSERT INTO chain_cursors (chain, block_number, block_hash) "
            "VALUES (:chain, :number, :hash) ON CONFLICT (chain) DO UPDATE "
            "SET block_number = excluded.block_number, block_hash = excluded.block_hash, "
            "updated_at = now()"
        ),
        {"chain": chain, "number": tip.number, "hash": tip.hash},
    )


# --- the two kinds of step --------------------------------------------------------------


# The cursor moves to the tip, the step's headers are stored and those the window no longer
# keeps are deleted, in one statement. Headers travel as one JSON document: cheaper to send
# than a parameter array per column.
_ADVANCE_WINDOW = text(
    """
    WITH cursor AS (
        INSERT INTO chain_cursors (chain, block_number, block_hash)
        VALUES (:chain, :number, :hash) ON CONFLICT (chain) DO UPDATE
        SET block_number = excluded.block_number, block_hash = excluded.block_hash,
            updated_at = now()
    ), forgotten AS (
        DELETE FROM chain_headers WHERE chain = :chain AND number <= :forget_up_to
    )
    INSERT INTO chain_headers (chain, number, hash, parent_hash, timestamp)
    SELECT :chain, (h ->> 0)::bigint, h ->> 1, h ->> 2, (h ->> 3)::bigint
    FROM jsonb_array_elements(CAST(:headers AS jsonb)) AS h
    """
)


def record_advance(
    session: Session, assets: ChainAssets, blocks: Sequence[ScannedBlock], *, window_size: int
) -> DepositChanges:
    """Accept `blocks` (linked, after the stored tip): deposits, credits, headers, cursor."""
    if not blocks:
        return DepositChanges()
    tip = blocks[-1].header
    changes = DepositChanges()
    arrivals = list(_arrivals(assets, blocks))
    new, fresh = _record_arrivals(session, assets, arrivals, tip, changes) if arrivals else ([], [])
    # The window moves last (`_ADVANCE_WINDOW`): deposits waiting from earlier steps are
    # confirmed against their stored headers, which a step longer than the window would
    # otherwise drop first. Those in this step's blocks, new or re-mined, are confirmed as
    # they arrived.
    arrived = [d for d, _ in fresh if d.status == DepositStatus.SEEN]
    confirmed = _confirm(session, assets, tip, arrived, changes)
    _insert_deposits(session, new)
    # A deposit already final when first recorded (a catch-up) was never pending: it gets
    # `deposit.credited` only, since `deposit.seen` announces a deposit that is not yet final.
    events = [
        _event("deposit.seen", deposit, asset, assets.chain)
        for deposit, asset in fresh
        if deposit.status != DepositStatus.CREDITED
    ]
    by_code = assets.by_code
    events += [
        _event("deposit.credited", deposit, by_code[deposit.asset], assets.chain)
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
        _ADVANCE_WINDOW,
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
    session.execute(
        delete(ChainHeader).where(ChainHeader.chain == chain, ChainHeader.number > ancestor.number)
    )
    _move_cursor(session, chain, ancestor)
    changes = DepositChanges()
    gone = session.scalars(
        select(Deposit)
        .where(
            Deposit.chain == chain,
            Deposit.block_number > ancestor.number,
            Deposit.status.in_(
                [DepositStatus.SEEN, DepositStatus.BELOW_MINIMUM, DepositStatus.CREDITED]
            ),
        )
        .order_by(Deposit.block_number, Deposit.id)
        .with_for_update()
    ).all()
    if not gone:
        return changes
    accounts = _Accounts(session, chain)
    accounts.lock(gone)
    by_code = assets.by_code
    events = []
    for deposit in gone:
        asset = by_code[deposit.asset]
        if deposit.status == DepositStatus.CREDITED:
            _reverse_credit(session, accounts, assets, deposit, asset)
            changes.reversed.append(deposit.id)
            event = "deposit.reversed"
        else:
            if deposit.hold_id is not None and deposit.status == DepositStatus.SEEN:
                postings.void_hold(session, deposit.hold_id)
            deposit.status = DepositStatus.ORPHANED
            changes.orphaned.append(deposit.id)
            event = "deposit.orphaned"
        deposit.confirmations = 0
        deposit.updated_at = _now()
        events.append(_event(event, deposit, asset, assets.chain))
    session.flush()
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


# --- arrivals ---------------------------------------------------------------------------


def _arrivals(assets: ChainAssets, blocks: Sequence[ScannedBlock]) -> Iterable[_Arrival]:
    for block in blocks:
        for native in block.native_transfers:
            yield _Arrival(
                tx_hash=native.tx_hash,
                log_index=native.index,
                asset=assets.native,
                amount=native.amount,
                from_address=native.from_address,
                to_address=native.to_address,
                block_number=native.block_number,
                block_hash=native.block_hash,
            )
        for token in block.token_transfers:
            asset = assets.tokens.get(token.token)
            if asset is None:
                raise InconsistentChainState(f"transfer of unconfigured token {token.token}")
            yield _Arrival(
                tx_hash=token.tx_hash,
                log_index=token.log_index,
                asset=asset,
                amount=token.amount,
                from_address=token.from_address,
                to_address=token.to_address,
                block_number=token.block_number,
                block_hash=token.block_hash,
            )


# Lists travel as JSON documents: psycopg sends a list parameter element by element, at
# several times the cost of encoding it as JSON.
_OWNERS = text(
    "SELECT address, wallet_id, tenant_id FROM deposit_addresses WHERE chain = :chain "
    "AND address IN (SELECT jsonb_array_elements_text(CAST(:addresses AS jsonb)))"
)
_EXISTING_DEPOSITS = text(
    "SELECT deposits.* FROM deposits JOIN ("
    "SELECT t ->> 0 AS tx_hash, (t ->> 1)::integer AS log_index "
    "FROM jsonb_array_elements(CAST(:transfers AS jsonb)) AS t"
    ") AS a USING (tx_hash, log_index) WHERE deposits.chain = :chain FOR UPDATE OF deposits"
)


def _record_arrivals(
    session: Session,
    assets: ChainAssets,
    arrivals: list[_Arrival],
    tip: BlockHeader,
    changes: DepositChanges,
) -> tuple[list[Deposit], list[tuple[Deposit, Asset]]]:
    """Update the re-mined deposits of `arrivals`; returns the new ones, not yet stored (the
    step inserts them in their final state), and the new and re-mined ones with their asset."""
    chain = assets.name
    addresses = json.dumps(sorted({a.to_address for a in arrivals}))
    owners = {
        row.address: (row.wallet_id, row.tenant_id)
        for row in session.execute(_OWNERS, {"chain": chain, "addresses": addresses})
    }
    transfers = json.dumps([[a.tx_hash, a.log_index] for a in arrivals])
    existing = {
        (d.tx_hash, d.log_index): d
        for d in session.scalars(
            select(Deposit).from_statement(_EXISTING_DEPOSITS),
            {"chain": chain, "transfers": transfers},
        )
    }
    new: list[Deposit] = []
    fresh: list[tuple[Deposit, Asset]] = []
    for arrival in arrivals:
        owner = owners.get(arrival.to_address)
        if owner is None:
            raise InconsistentChainState(
                f"{chain}: transfer to {arrival.to_address}, which is no deposit address"
            )
        status = (
            DepositStatus.BELOW_MINIMUM
            if arrival.amount < arrival.asset.min_deposit
            else DepositStatus.SEEN
        )
        confirmations = tip.number - arrival.block_number + 1
        deposit = existing.get((arrival.tx_hash, arrival.log_index))
        if deposit is None:
            deposit = Deposit(
                id=new_id(DEPOSIT_PREFIX),
                tenant_id=owner[1],
                wallet_id=owner[0],
                chain=chain,
                tx_hash=arrival.tx_hash,
                log_index=arrival.log_index,
                asset=arrival.asset.code,
                amount=arrival.amount,
                from_address=arrival.from_address,
                to_address=arrival.to_address,
                block_number=arrival.block_number,
                block_hash=arrival.block_hash,
                status=status,
                confirmations=confirmations,
                reversal_count=0,
            )
            new.append(deposit)
            fresh.append((deposit, arrival.asset))
        elif deposit.status in (DepositStatus.ORPHANED, DepositStatus.REVERSED):
            # Re-mined after a reorg: the same transfer in another block, or in the very block
            # it left when the chain returns to it; its count restarts.
            deposit.block_number = arrival.block_number
            deposit.block_hash = arrival.block_hash
            deposit.status = status
            deposit.confirmations = confirmations
            deposit.hold_id = None
            deposit.credit_transaction_id = None
            deposit.credited_at = None
            deposit.reversal_transaction_id = None
            deposit.updated_at = _now()
            fresh.append((deposit, arrival.asset))
        elif deposit.block_hash == arrival.block_hash:
            continue  # this block was recorded already
        else:
            # Its old block was never rolled back, yet the transfer is in a new one: the stored
            # window and the chain disagree. Crediting on either block could be wrong.
            raise InconsistentChainState(
                f"{chain}: deposit {deposit.id} ({deposit.status}) is in block "
                f"{deposit.block_number} {deposit.block_hash} and now in "
                f"{arrival.block_number} {arrival.block_hash} without a rollback between"
            )
    session.flush()
    for deposit, asset in fresh:
        if deposit.status == DepositStatus.BELOW_MINIMUM:
            changes.below_minimum.append(deposit.id)
            logger.warning(
                "%s: deposit %s of %s %s to wallet %s is below the minimum of %s: recorded, "
                "not credited (tx %s)",
                chain,
                deposit.id,
                asset.format(deposit.amount),
                asset.code,
                deposit.wallet_id,
                asset.format(asset.min_deposit),
                deposit.tx_hash,
            )
        else:
            changes.seen.append(deposit.id)
    return new, fresh


_INSERT_DEPOSITS = text(
    """
    INSERT INTO deposits (id, tenant_id, wallet_id, chain, tx_hash, log_index, asset, amount,
                          from_address, to_address, block_number, block_hash, status,
                          confirmations, hold_id, credit_transaction_id, reversal_count,
                          credited_at, updated_at)
    SELECT d.id, d.tenant_id, d.wallet_id, d.chain, d.tx_hash, d.log_index, d.asset, d.amount,
           d.from_address, d.to_address, d.block_number, d.block_hash, d.status,
           d.confirmations, d.hold_id, d.credit_transaction_id, d.reversal_count,
           d.credited_at, coalesce(d.updated_at, now())
    FROM jsonb_to_recordset(CAST(:deposits AS jsonb)) AS d(
        id text, tenant_id text, wallet_id text, chain text, tx_hash text, log_index integer,
        asset text, amount numeric, from_address text, to_address text, block_number bigint,
        block_hash text, status text, confirmations integer, hold_id bigint,
        credit_transaction_id bigint, reversal_count integer, credited_at timestamptz,
        updated_at timestamptz)
    """
)


def _insert_deposits(session: Session, deposits: Sequence[Deposit]) -> None:
    """Store new deposits, as the step left them, in one statement."""
    if not deposits:
        return
    rows = [
        {
            "id": d.id,
            "tenant_id": d.tenant_id,
            "wallet_id": d.wallet_id,
            "chain": d.chain,
            "tx_hash": d.tx_hash,
            "log_index": d.log_index,
            "asset": d.asset,
            "amount": str(d.amount),
            "from_address": d.from_address,
            "to_address": d.to_address,
            "block_number": d.block_number,
            "block_hash": d.block_hash,
            "status": d.status,
            "confirmations": d.confirmations,
            "hold_id": d.hold_id,
            "credit_transaction_id": d.credit_transaction_id,
            "reversal_count": d.reversal_count,
            "credited_at": None if d.credited_at is None else d.credited_at.isoformat(),
            "updated_at": None if d.updated_at is None else d.updated_at.isoformat(),
        }
        for d in deposits
    ]
    session.execute(_INSERT_DEPOSITS, {"deposits": json.dumps(rows)})


# --- confirmations and credits ----------------------------------------------------------


# `seen` deposits whose block is in the stored header window.
_WAITING_DEPOSITS = (
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


def _confirm(
    session: Session,
    assets: ChainAssets,
    tip: BlockHeader,
    arrived: Sequence[Deposit],
    changes: DepositChanges,
) -> list[Deposit]:
    """Count confirmations of `seen` deposits in canonical blocks, those in stored blocks and
    those `arrived` in this step's blocks; credit the confirmed ones (returned), put the others
    on hold (pending in) if they are not yet."""
    chain = assets.name
    stored = session.scalars(_WAITING_DEPOSITS, {"chain": chain}).all()
    pending = sorted([*stored, *arrived], key=lambda d: (d.block_number, d.id))
    if not pending:
        return []
    required = assets.chain.confirmations
    confirmed: list[Deposit] = []
    waiting: list[Deposit] = []
    for deposit in pending:
        deposit.confirmations = tip.number - deposit.block_number + 1
        (confirmed if deposit.confirmations >= required else waiting).append(deposit)
    unheld = [d for d in waiting if d.hold_id is None]
    if not confirmed and not unheld:
        session.flush()
        return []
    accounts = _Accounts(session, chain)
    accounts.lock([*confirmed, *unheld])
    if confirmed:
        _credit(session, accounts, assets, confirmed)
        for deposit in confirmed:
            changes.credited.append(deposit.id)
    for deposit in unheld:
        hold = postings.place_hold(
            session,
            accounts.chain(deposit.asset),
            accounts.wallet(deposit.wallet_id, deposit.asset),
            deposit.amount,
            Reason.DEPOSIT,
            metadata={"deposit_id": deposit.id},
        )
        deposit.hold_id = hold.id
    session.flush()
    return confirmed


def _credit(
    session: Session, accounts: "_Accounts", assets: ChainAssets, deposits: Sequence[Deposit]
) -> None:
    """Post each deposit from the chain's account to its wallet, all in one ledger call.

    A hold, if any, is voided first and the credit is posted as its own transaction: a hold's
    posting carries no external reference, and the reference is what makes a second credit
    of the same deposit impossible in the database.
    """
    requests = []
    for deposit in deposits:
        if deposit.hold_id is not None:
            postings.void_hold(session, deposit.hold_id)
        requests.append(
            TransactionRequest(
                reason=Reason.DEPOSIT,
                postings=[
                    Posting(accounts.chain(deposit.asset), -deposit.amount),
                    Posting(accounts.wallet(deposit.wallet_id, deposit.asset), deposit.amount),
                ],
                metadata={"deposit_id": deposit.id, "chain": deposit.chain},
                external=ExternalReference(EXTERNAL_KIND, credit_reference(deposit)),
            )
        )
    results = postings.apply(session, requests, atomic=True)
    for deposit, result in zip(deposits, results, strict=True):
        if result.error is not None:
            raise result.error
        deposit.status = DepositStatus.CREDITED
        deposit.credit_transaction_id = result.transaction_id
        deposit.credited_at = deposit.updated_at = _now()
    logger.info("%s: credited %d deposit(s)", assets.name, len(deposits))


def credit_reference(deposit: Deposit) -> str:
    """The ledger's external reference of the deposit's credit: chain:tx_hash:log_index.

    A credit reversed after a deep reorg may be credited again when the transfer is re-mined;
    that credit's reference carries the number of reversals before it.
    """
    base = f"{deposit.chain}:{deposit.tx_hash}:{deposit.log_index}"
    return base if deposit.reversal_count == 0 else f"{base}:{deposit.reversal_count}"


def _reverse_credit(
    session: Session, accounts: "_Accounts", assets: ChainAssets, deposit: Deposit, asset: Asset
) -> None:
    """Undo a credit whose block left the chain. What the wallet can no longer cover (it was
    spent) is booked to `reorg-shortfall:<chain>` so the reversal always happens."""
    assert deposit.credit_transaction_id is not None
    metadata = {"deposit_id": deposit.id, "reorg": True}
    try:
        reversal = postings.reverse(session, deposit.credit_transaction_id, metadata)
        shortfall = 0
    except InsufficientFunds:
        wallet_account = accounts.wallet(deposit.wallet_id, deposit.asset)
        available = max(0, balance(session, wallet_account).available)
        taken = min(deposit.amount, available)
        shortfall = deposit.amount - taken
        lines = [
            Posting(accounts.chain(deposit.asset), deposit.amount),
            Posting(
                system_account(session, f"reorg-shortfall:{assets.name}", deposit.asset), -shortfall
            ),
        ]
        if taken:
            lines.append(Posting(wallet_account, -taken))
        reversal = postings.post(
            session,
            TransactionRequest(
                reason=Reason.REVERSAL,
                postings=lines,
                metadata=metadata | {"shortfall": str(shortfall)},
                reverses=deposit.credit_transaction_id,
            ),
        )
    deposit.status = DepositStatus.REVERSED
    deposit.reversal_transaction_id = reversal
    deposit.reversal_count += 1
    deposit.updated_at = _now()
    logger.critical(
        "ALERT %s: credited deposit %s of %s %s to wallet %s left the chain in a reorg deeper "
        "than %d confirmations (block %d, tx %s): credit reversed, shortfall %s",
        assets.name,
        deposit.id,
        asset.format(deposit.amount),
        asset.code,
        deposit.wallet_id,
        assets.chain.confirmations,
        deposit.block_number,
        deposit.tx_hash,
        asset.format(shortfall),
    )


class _Accounts:
    """The ledger accounts a step touches, looked up (or created) once per step."""

    def __init__(self, session: Session, chain: str) -> None:
        self._session = session
        self._chain = chain
        self._chain_ids: dict[str, int] = {}
        self._wallet_ids: dict[tuple[str, str], int] = {}

    def chain(self, asset: str) -> int:
        """`chain:<chain>`, the outside world's side of every deposit of `asset`."""
        if asset not in self._chain_ids:
            self._chain_ids[asset] = system_account(self._session, f"chain:{self._chain}", asset)
        return self._chain_ids[asset]

    def wallet(self, wallet_id: str, asset: str) -> int:
        key = (wallet_id, asset)
        if key not in self._wallet_ids:
            self._wallet_ids.update(user_accounts(self._session, [key]))
        return self._wallet_ids[key]

    def lock(self, deposits: Sequence[Deposit]) -> None:
        """Lock every account of `deposits` in id order, before any ledger call of the step.

        Each ledger function locks what it touches in id order, but a step makes many calls;
        taking all the locks first keeps one global order, so a step cannot deadlock with
        transfers on the same wallets. The wallets' accounts are found or created at once.
        """
        keys = {(d.wallet_id, d.asset) for d in deposits} - self._wallet_ids.keys()
        if keys:
            self._wallet_ids.update(user_accounts(self._session, keys))
        ids = set()
        for deposit in deposits:
            ids.add(self.chain(deposit.asset))
            ids.add(self.wallet(deposit.wallet_id, deposit.asset))
        self._session.execute(
            text("SELECT 1 FROM accounts WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"),
            {"ids": sorted(ids)},
        )


def _now() -> datetime:
    return datetime.now(UTC)


# --- events -----------------------------------------------------------------------------


def deposit_document(deposit: Deposit, asset: Asset, chain: Chain) -> dict[str, Any]:
    """A deposit as events and the API show it: amounts as decimal strings."""
    return {
        "id": deposit.id,
        "wallet_id": deposit.wallet_id,
        "chain": deposit.chain,
        "asset": deposit.asset,
        "amount": asset.format(deposit.amount),
        "status": deposit.status,
        "tx_hash": deposit.tx_hash,
        "log_index": deposit.log_index,
        "block_number": deposit.block_number,
        "block_hash": deposit.block_hash,
        "confirmations": deposit.confirmations,
        "confirmations_required": chain.confirmations,
        "from_address": deposit.from_address,
        "to_address": deposit.to_address,
    }


def _event(event_type: str, deposit: Deposit, asset: Asset, chain: Chain) -> Event:
    return Event(deposit.tenant_id, event_type, deposit_document(deposit, asset, chain))
