"""Withdrawal requests and their state changes, each committed with its ledger entries and
its `withdrawal.*` event by the caller's unit of work.

A request is validated (asset on its chain, amount, address, blocklist, limits, wallet
active), priced (network fee at the quote's fee cap times the transfer's gas limit, in the
asset at a configured rate for tokens, plus the asset's service fee) and held: amount plus
fee reserved from the wallet towards `chain:<chain>`. Confirmation voids the hold and posts
amount and fee in one transaction with the external reference ('withdrawal', id), so it
happens once; the network fee the chain took, in its native asset, goes from the fee account
`fees:<chain>` to `chain:<chain>`. A withdrawal to one of our own deposit addresses is an
internal transfer: posted at once, no hold, no fee.
"""

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from sqlalchemy import select
from sqlalchemy.orm import Session

from chains import (
    ERC20_TRANSFER_GAS,
    ETH_TRANSFER_GAS,
    BlockHeader,
    FeeCapReached,
    FeePolicy,
    FeeQuote,
    RpcClient,
    RpcError,
    ScannedBlock,
    SentTransaction,
    account_nonces,
    native_transfer,
    quote_fees,
    token_transfer,
)
from chains import TransactionRequest as ChainTransaction
from custody import checksum_address
from wallet.assets.service import Asset, AssetKind, Catalogue, Chain
from wallet.events.service import Event, emit_many
from wallet.ids import new_id
from wallet.ledger import service as ledger
from wallet.ledger.service import (
    ExternalReference,
    Posting,
    Reason,
    TransactionRequest,
    lock_accounts,
    system_account,
    user_account,
    user_accounts,
)
from wallet.settings import Settings, WithdrawalPolicy
from wallet.wallets.errors import WalletNotActive
from wallet.wallets.models import WalletStatus
from wallet.wallets.service import lock_status
from wallet.webhooks.service import subscribed_tenants
from wallet.withdrawals.errors import (
    AlreadyApproved,
    AssetNotOnChain,
    BlockedAddress,
    ChecksumMismatch,
    DailyLimitExceeded,
    FeeQuoteUnavailable,
    InvalidAddress,
    NoFeeRate,
    NotAwaitingApproval,
    NotCancellable,
    OwnWalletDestination,
    PerTransactionLimitExceeded,
    RequesterCannotApprove,
    ZeroAddress,
)
from wallet.withdrawals.models import (
    IN_FLIGHT_STATUSES,
    WITHDRAWAL_PREFIX,
    Withdrawal,
    WithdrawalApproval,
    WithdrawalAttempt,
    WithdrawalStatus,
)
from wallet.withdrawals.repository import (
    approval_counts,
    approvers,
    deposit_address_wallet,
    get_withdrawal,
    hot_wallets,
    lock_next_nonce,
    lock_withdrawals,
    sent_since,
    set_next_nonce,
    start_nonces,
)
from wallet.withdrawals.schemas import AlertKind, CustodyAlertOut, WithdrawalCreate, WithdrawalOut

logger = logging.getLogger(__name__)

EXTERNAL_KIND = "withdrawal"
NETWORK_FEE_KIND = "withdrawal-network-fee"
CANCELLABLE = (
    WithdrawalStatus.PENDING_APPROVAL,
    WithdrawalStatus.QUEUED,
    WithdrawalStatus.WAITING_LIQUIDITY,
)
ZERO_ADDRESS = "0x" + "0" * 40

FeeQuoter = Callable[[Chain], FeeQuote]
"""The fees a transaction on the chain would carry now; raises FeeQuoteUnavailable."""


def fee_policy(settings: Settings) -> FeePolicy:
    return FeePolicy(max_fee_per_gas_cap=settings.withdrawal_max_fee_per_gas)


class NodeFeeQuoter:
    """Quotes fees from each chain's node, with one RPC client per chain for the process.

    A quote is shared by the requests of the next `max_age` seconds, so that under load a
    chain's node is asked about once per `max_age`, not once per request. The fee a request
    is charged is the quote it was given, whatever the transaction later pays.
    """

    def __init__(self, policy: FeePolicy, max_age: float = 0.0) -> None:
        self._policy = policy
        self._max_age = max_age
        self._clients: dict[str, RpcClient] = {}
        self._quotes: dict[str, tuple[float, FeeQuote]] = {}
        self._lock = threading.Lock()

    def cached(self, chain: Chain) -> FeeQuote | None:
        """The chain's shared quote, if it is younger than `max_age`."""
        found = self._quotes.get(chain.name)
        if found is None or time.monotonic() - found[0] >= self._max_age:
            return None
        return found[1]

    def __call__(self, chain: Chain) -> FeeQuote:
        shared = self.cached(chain)
        if shared is not None:
            return shared
        with self._lock:
            client = self._clients.get(chain.name)
            if client is None:
                client = self._clients[chain.name] = RpcClient(chain.rpc_url, timeout=10.0)
        asked = time.monotonic()
        try:
            quote = quote_fees(client, self._policy)
        except RpcError as error:
            raise FeeQuoteUnavailable(f"the {chain.name} node did not answer: {error}") from None
        if isinstance(quote, FeeCapReached):
            raise FeeQuoteUnavailable(f"network fees on {chain.name} are above the service's cap")
        self._quotes[chain.name] = (asked, quote)
        return quote

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


@dataclass(frozen=True)
class WithdrawalRules:
    """The configured limits, approval thresholds, token fee rates and blocked addresses."""

    policies: Mapping[str, WithdrawalPolicy]
    blocklist: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> "WithdrawalRules":
        return cls(
            policies=settings.withdrawal_policies,
            blocklist=frozenset(address.lower() for address in settings.withdrawal_blocklist),
        )

    def policy(self, asset: str) -> WithdrawalPolicy:
        return self.policies.get(asset) or WithdrawalPolicy()


def checked_address(address: str) -> str:
    """`address` as lowercase hex, if it is one: a mixed-case address must be EIP-55."""
    body = address[2:] if address.startswith("0x") else None
    if body is None or len(body) != 40:
        raise InvalidAddress(f"{address!r} is not 0x followed by 40 hex digits")
    try:
        raw = bytes.fromhex(body)
    except ValueError:
        raise InvalidAddress(f"{address!r} is not 0x followed by 40 hex digits") from None
    if body not in (body.lower(), body.upper()) and checksum_address(raw) != address:
        raise ChecksumMismatch(f"{address!r} fails its EIP-55 checksum")
    return "0x" + body.lower()


def gas_limit(asset: Asset) -> int:
    """The gas limit of a withdrawal transaction of `asset`."""
    return ETH_TRANSFER_GAS if asset.kind is AssetKind.NATIVE else ERC20_TRANSFER_GAS


def transfer_request(
    chain: Chain, asset: Asset, *, nonce: int, to: str, amount: int, fees: FeeQuote
) -> ChainTransaction:
    """The transaction sending `amount` of `asset` to `to`: a plain transfer of the native
    asset, or a token's `transfer` at the asset's gas limit."""
    if asset.kind is AssetKind.NATIVE:
        return native_transfer(
            chain_id=chain.chain_id, nonce=nonce, to=to, amount=amount, fees=fees
        )
    assert asset.contract_address is not None
    return token_transfer(
        chain_id=chain.chain_id,
        nonce=nonce,
        token=asset.contract_address,
        to=to,
        amount=amount,
        fees=fees,
        gas=gas_limit(asset),
    )


def native_asset(catalogue: Catalogue, chain: str) -> Asset:
    (native,) = (a for a in catalogue.assets_on(chain) if a.kind is AssetKind.NATIVE)
    return native


def quoted_fee(asset: Asset, native: Asset, fees: FeeQuote, policy: WithdrawalPolicy) -> int:
    """The fee charged for a withdrawal of `asset`: the most its transaction can cost at
    `fees` (in the asset, rounded up), plus the asset's service fee."""
    network = fees.max_cost(gas_limit(asset))
    if asset.kind is not AssetKind.NATIVE:
        if policy.fee_rate is None:
            raise NoFeeRate(f"{asset.code} has no fee rate configured for withdrawals")
        rate = Fraction(policy.fee_rate) * 10**asset.decimals / 10**native.decimals
        converted = network * rate
        network = -(-converted.numerator // converted.denominator)
    return network + asset.withdrawal_fee


@dataclass(frozen=True)
class CheckedRequest:
    """A withdrawal request that passed the checks needing no database: its asset and chain,
    amount in minor units, address (lowercase) and the asset's rules."""

    asset: Asset
    native: Asset
    chain: Chain
    amount: int
    address: str
    policy: WithdrawalPolicy

    def fee(self, fees: FeeQuote) -> int:
        """The fee of a withdrawal leaving the service at `fees`; raises NoFeeRate."""
        return quoted_fee(self.asset, self.native, fees, self.policy)

    @property
    def approvals_required(self) -> int:
        policy, asset, amount = self.policy, self.asset, self.amount
        if policy.dual_approval_above is not None and amount > asset.parse(
            policy.dual_approval_above
        ):
            return 2
        if policy.approval_above is not None and amount > asset.parse(policy.approval_above):
            return 1
        return 0

    @property
    def daily_limit(self) -> int | None:
        """The most the wallet may withdraw of the asset in any 24 hours, if limited."""
        daily = self.policy.daily
        return None if daily is None else self.asset.parse(daily)

    def daily_limit_exceeded(self) -> DailyLimitExceeded:
        return DailyLimitExceeded(f"at most {self.policy.daily} {self.asset.code} in any 24 hours")


def check_request(
    catalogue: Catalogue, rules: WithdrawalRules, body: WithdrawalCreate
) -> CheckedRequest:
    """The checks a request passes before the database: asset on its chain, amount, address
    (EIP-55, not zero, not blocked), the per-transaction limit; each refusal its own error."""
    asset = catalogue.asset(body.asset)
    chain = catalogue.chain(body.destination.chain)
    if asset.chain != chain.name:
        raise AssetNotOnChain(f"{asset.code} is not an asset of chain {chain.name}")
    amount = asset.parse(body.amount)
    address = checked_address(body.destination.address)
    if address == ZERO_ADDRESS:
        raise ZeroAddress("the zero address has no owner: funds sent there are lost")
    if address in rules.blocklist:
        raise BlockedAddress(f"withdrawals to {body.destination.address} are not allowed")
    policy = rules.policy(asset.code)
    if policy.per_transaction is not None and amount > asset.parse(policy.per_transaction):
        raise PerTransactionLimitExceeded(
            f"at most {policy.per_transaction} {asset.code} per withdrawal"
        )
    native = native_asset(catalogue, chain.name)
    return CheckedRequest(asset, native, chain, amount, address, policy)


def request_withdrawal(
    session: Session,
    tenant_id: str,
    key_id: str,
    body: WithdrawalCreate,
    *,
    catalogue: Catalogue,
    rules: WithdrawalRules,
    quote: FeeQuoter,
) -> Withdrawal:
    """Validate, price and hold a withdrawal; internal ones are completed at once."""
    checked = check_request(catalogue, rules, body)
    chain, asset, amount = checked.chain, checked.asset, checked.amount
    owner = deposit_address_wallet(session, chain.name, checked.address)
    fee = 0
    if owner is None:
        fee = checked.fee(quote(chain))

    # Requests of one wallet are made one at a time, so the daily limit holds under races.
    status = lock_status(session, tenant_id, body.wallet_id)
    if status != WalletStatus.ACTIVE:
        raise WalletNotActive(f"wallet {body.wallet_id} is {status}")
    _check_daily(session, body.wallet_id, checked)
    withdrawal = new_withdrawal(tenant_id, key_id, body, checked, fee=fee, owner=owner)
    if owner is not None:
        _complete_internal(session, withdrawal, owner)
        event = "withdrawal.completed"
    else:
        withdrawal.hold_id = ledger.place_hold(
            session,
            user_account(session, withdrawal.wallet_id, asset.code),
            system_account(session, f"chain:{chain.name}", asset.code),
            amount + fee,
            Reason.WITHDRAWAL,
            metadata={"withdrawal_id": withdrawal.id},
        ).id
        event = "withdrawal.requested"
    session.add(withdrawal)
    session.flush()
    session.refresh(withdrawal)
    announce(session, catalogue, event, withdrawal)
    return withdrawal


def new_withdrawal(
    tenant_id: str,
    key_id: str,
    body: WithdrawalCreate,
    checked: CheckedRequest,
    *,
    fee: int,
    owner: str | None = None,
) -> Withdrawal:
    """The withdrawal row of a request, not yet stored: to `owner`'s wallet (internal), or
    waiting for its approvals or queued."""
    status = WithdrawalStatus.COMPLETED
    approvals = 0
    if owner is None:
        approvals = checked.approvals_required
        status = WithdrawalStatus.PENDING_APPROVAL if approvals else WithdrawalStatus.QUEUED
    return Withdrawal(
        id=new_id(WITHDRAWAL_PREFIX),
        tenant_id=tenant_id,
        wallet_id=body.wallet_id,
        asset=checked.asset.code,
        amount=checked.amount,
        fee=fee,
        destination_type=body.destination.type,
        chain=checked.chain.name,
        address=checked.address,
        internal=owner is not None,
        destination_wallet_id=owner,
        status=status,
        approvals_required=approvals,
        requested_by=key_id,
        confirmations=0,
    )


def _check_daily(session: Session, wallet_id: str, checked: CheckedRequest) -> None:
    """Checked under the wallet's lock, so concurrent requests cannot both slip under it."""
    limit = checked.daily_limit
    if limit is None:
        return
    since = datetime.now(UTC) - timedelta(days=1)
    if sent_since(session, wallet_id, checked.asset.code, since) + checked.amount > limit:
        raise checked.daily_limit_exceeded()


def _complete_internal(session: Session, withdrawal: Withdrawal, owner: str) -> None:
    if owner == withdrawal.wallet_id:
        raise OwnWalletDestination("this is the wallet's own deposit address")
    accounts = (
        user_account(session, withdrawal.wallet_id, withdrawal.asset),
        user_account(session, owner, withdrawal.asset),
    )
    withdrawal.transaction_id = ledger.post(
        session,
        TransactionRequest(
            reason=Reason.WITHDRAWAL,
            postings=[
                Posting(accounts[0], -withdrawal.amount),
                Posting(accounts[1], withdrawal.amount),
            ],
            metadata={"withdrawal_id": withdrawal.id, "internal": True},
            external=ExternalReference(EXTERNAL_KIND, withdrawal.id),
        ),
    )


def cancel_withdrawal(
    session: Session, tenant_id: str, withdrawal_id: str, catalogue: Catalogue
) -> Withdrawal:
    """Cancel a withdrawal not yet signed and release its hold."""
    withdrawal = get_withdrawal(session, tenant_id, withdrawal_id, lock=True)
    if withdrawal.status not in CANCELLABLE:
        raise NotCancellable(f"withdrawal {withdrawal_id} is {withdrawal.status}")
    assert withdrawal.hold_id is not None
    ledger.void_hold(session, withdrawal.hold_id)
    return transition(session, catalogue, withdrawal, WithdrawalStatus.CANCELLED)


def approve_withdrawal(
    session: Session, tenant_id: str, withdrawal_id: str, key_id: str, catalogue: Catalogue
) -> Withdrawal:
    """Record an operator's approval; with the approvals it needs the withdrawal is queued."""
    withdrawal = get_withdrawal(session, tenant_id, withdrawal_id, lock=True)
    if withdrawal.status != WithdrawalStatus.PENDING_APPROVAL:
        raise NotAwaitingApproval(f"withdrawal {withdrawal_id} is {withdrawal.status}")
    if key_id == withdrawal.requested_by:
        raise RequesterCannotApprove("another operator's key must approve this withdrawal")
    given = approvers(session, withdrawal_id)
    if key_id in given:
        raise AlreadyApproved("a second approval must come from another operator's key")
    session.add(WithdrawalApproval(withdrawal_id=withdrawal_id, key_id=key_id))
    session.flush()
    status = WithdrawalStatus.PENDING_APPROVAL
    if len(given) + 1 >= withdrawal.approvals_required:
        status = WithdrawalStatus.QUEUED
    return transition(session, catalogue, withdrawal, status, "withdrawal.approved")


def transition(
    session: Session,
    catalogue: Catalogue,
    withdrawal: Withdrawal,
    status: WithdrawalStatus,
    event: str | None = None,
) -> Withdrawal:
    """Move the withdrawal to `status` and announce it (`withdrawal.<status>` by default)."""
    transition_many(session, catalogue, [withdrawal], status, event)
    return withdrawal


def transition_many(
    session: Session,
    catalogue: Catalogue,
    withdrawals: Sequence[Withdrawal],
    status: WithdrawalStatus,
    event: str | None = None,
) -> None:
    """Move each of `withdrawals` to `status` and announce each, in order, with one write of
    the rows and one of the events."""
    if not withdrawals:
        return
    now = datetime.now(UTC)
    for withdrawal in withdrawals:
        withdrawal.status = status
        withdrawal.updated_at = now
    session.flush()
    approved = [w.id for w in withdrawals if w.approvals_required]
    counts = approval_counts(session, approved) if approved else {}
    event_type = event or f"withdrawal.{status.value}"
    emit_many(
        session,
        [
            Event(w.tenant_id, event_type, out_with(catalogue, w, counts.get(w.id, 0)))
            for w in withdrawals
        ],
    )


def announce(session: Session, catalogue: Catalogue, event: str, withdrawal: Withdrawal) -> None:
    emit_many(session, [Event(withdrawal.tenant_id, event, out(session, catalogue, withdrawal))])


def out(session: Session, catalogue: Catalogue, withdrawal: Withdrawal) -> WithdrawalOut:
    """The withdrawal as the API shows it."""
    if not withdrawal.approvals_required:
        return out_with(catalogue, withdrawal, 0)
    counts = approval_counts(session, [withdrawal.id])
    return out_with(catalogue, withdrawal, counts[withdrawal.id])


def out_with(catalogue: Catalogue, withdrawal: Withdrawal, approvals: int) -> WithdrawalOut:
    return WithdrawalOut.of(
        withdrawal,
        catalogue.asset(withdrawal.asset),
        native_asset(catalogue, withdrawal.chain),
        catalogue.chain(withdrawal.chain),
        approvals,
    )


def lock_hot_wallet_nonce(session: Session, chain: str, address: str, rpc: RpcClient) -> int:
    """The hot wallet's next nonce, its row locked to the end of the caller's transaction, so
    one nonce is handed out at a time (the row starts at the chain's `pending` count). The
    caller stores what it signs with it and calls `advance_hot_wallet_nonce` in the same
    transaction: nonces have no gaps, whoever signs (withdrawals, sweeps)."""
    nonce = lock_next_nonce(session, chain, address)
    if nonce is None:
        start_nonces(session, chain, address, account_nonces(rpc, address).pending)
        nonce = lock_next_nonce(session, chain, address)
        assert nonce is not None
    return nonce


def advance_hot_wallet_nonce(session: Session, chain: str, address: str, used: int) -> None:
    set_next_nonce(session, chain, address, used + 1)


def register_hot_wallet(session: Session, chain: str, address: str, next_nonce: int) -> None:
    """Know `address` as the chain's hot wallet before it signs (its holdings reconcile from
    then on, whichever process asks), its nonces starting at `next_nonce`, the chain's count;
    a hot wallet known already is left as it is."""
    start_nonces(session, chain, address.lower(), next_nonce)


def hot_wallet_addresses(session: Session, chain: str) -> list[str]:
    """The hot wallets that have signed on `chain` (lowercase)."""
    return hot_wallets(session, chain)


def track_blocks(
    session: Session,
    catalogue: Catalogue,
    chain: Chain,
    blocks: Sequence[ScannedBlock],
    tip: BlockHeader,
    *,
    others: Collection[str] = (),
) -> None:
    """The watcher's step for withdrawals: match the hot wallets' transactions in `blocks` to
    withdrawals by any of their attempts' hashes, count confirmations, and settle the
    withdrawals that have enough. A hot wallet transaction of no withdrawal, and not among
    `others` (the hashes of the hot wallet's sweep transactions), is an alert."""
    sent = [tx for block in blocks for tx in block.sent if tx.tx_hash not in others]
    mined_again = _record_mined(session, catalogue, chain, sent) if sent else []
    mined = session.scalars(
        select(Withdrawal)
        .where(
            Withdrawal.chain == chain.name,
            Withdrawal.status == WithdrawalStatus.BROADCAST,
            Withdrawal.block_number.is_not(None),
        )
        .order_by(Withdrawal.block_number, Withdrawal.id)
        .with_for_update()
    ).all()
    # Each row is written once: its confirmations with what settling changes.
    with session.no_autoflush:
        for withdrawal in mined:
            assert withdrawal.block_number is not None
            withdrawal.confirmations = tip.number - withdrawal.block_number + 1
        due = [w for w in mined if w.confirmations >= chain.confirmations]
        if due:
            settle(session, catalogue, chain, due)
    for withdrawal, tx in mined_again:
        _settle_again(session, catalogue, chain, withdrawal, tx)
    session.flush()


def _record_mined(
    session: Session, catalogue: Catalogue, chain: Chain, sent: Sequence[SentTransaction]
) -> list[tuple[Withdrawal, SentTransaction]]:
    """Record where the withdrawals of `sent` were mined; the confirmed ones that a deep reorg
    had removed (`unmine`), mined again, are returned for `_settle_again`."""
    mined_again = []
    hashes = [tx.tx_hash for tx in sent]
    owners = dict(
        session.execute(
            select(WithdrawalAttempt.tx_hash, WithdrawalAttempt.withdrawal_id).where(
                WithdrawalAttempt.tx_hash.in_(hashes)
            )
        ).all()
    )
    found = lock_withdrawals(session, list(set(owners.values())))
    mined = []
    for tx in sent:
        withdrawal_id = owners.get(tx.tx_hash)
        withdrawal = None if withdrawal_id is None else found.get(withdrawal_id)
        if withdrawal is not None and _sent_again(withdrawal):
            mined_again.append((withdrawal, tx))
            continue
        if withdrawal is None or withdrawal.status not in IN_FLIGHT_STATUSES:
            state = "none" if withdrawal is None else f"{withdrawal.id} is {withdrawal.status}"
            _alert(
                session,
                chain,
                "unknown_transaction",
                (tx.tx_hash, tx.block_number),
                withdrawal_id=None if withdrawal is None else withdrawal.id,
                message=f"hot wallet {tx.from_address} sent tx {tx.tx_hash} (nonce {tx.nonce}, "
                f"block {tx.block_number}) that matches no withdrawal in flight ({state}): the "
                "hot wallet's key may be used elsewhere",
            )
            continue
        withdrawal.tx_hash, withdrawal.succeeded, withdrawal.network_fee = (
            tx.tx_hash,
            tx.succeeded,
            tx.fee,
        )
        withdrawal.block_number, withdrawal.block_hash = tx.block_number, tx.block_hash
        withdrawal.failure_reason = None
        mined.append(withdrawal)
    # Mined is the chain's evidence: a withdrawal `signed` or `unknown` was sent after all.
    transition_many(session, catalogue, mined, WithdrawalStatus.BROADCAST, "withdrawal.mined")
    return mined_again


def _settle_again(
    session: Session,
    catalogue: Catalogue,
    chain: Chain,
    withdrawal: Withdrawal,
    tx: SentTransaction,
) -> None:
    """A confirmed withdrawal mined again after a deep reorg stays posted. Its network fee may
    differ this time (another block, another base fee): the difference is the house's, booked
    from `fees:<chain>`. Reverted this time, it did not pay: an alert, for an operator."""
    assert withdrawal.network_fee is not None
    difference = tx.fee - withdrawal.network_fee
    withdrawal.tx_hash, withdrawal.network_fee = tx.tx_hash, tx.fee
    withdrawal.block_number, withdrawal.block_hash = tx.block_number, tx.block_hash
    if difference:
        native = native_asset(catalogue, chain.name).code
        lines = {
            system_account(session, f"fees:{chain.name}", native): -difference,
            system_account(session, f"chain:{chain.name}", native): difference,
        }
        ledger.post(
            session,
            TransactionRequest(
                reason=Reason.FEE,
                postings=[Posting(account, amount) for account, amount in sorted(lines.items())],
                metadata={"withdrawal_id": withdrawal.id, "tx_hash": tx.tx_hash},
                external=ExternalReference(NETWORK_FEE_KIND, f"{withdrawal.id}:{tx.block_hash}"),
            ),
        )
    if not tx.succeeded:
        _alert(
            session,
            chain,
            "settled_withdrawal_reorged",
            (tx.tx_hash, tx.block_number),
            withdrawal_id=withdrawal.id,
            message=f"confirmed withdrawal {withdrawal.id} was mined again after a deep reorg, "
            f"reverted this time (tx {tx.tx_hash}, block {tx.block_number}): it is posted but "
            "did not pay; check by hand",
        )


def unmine(session: Session, catalogue: Catalogue, chain: Chain, ancestor: BlockHeader) -> None:
    """The blocks above `ancestor` left the chain: their withdrawals are `broadcast` again, and
    the broadcaster sends their stored transactions again (the node dropped them).

    A withdrawal settled already (a reorg deeper than the confirmations) is an alert. A
    confirmed one keeps its posting and its transaction is sent again, so that the chain
    comes back to what the ledger says (the same signed transaction: it can't pay twice). A
    failed one was released: sending it again could pay what is no longer held, so it isn't.
    """
    gone = session.scalars(
        select(Withdrawal)
        .where(Withdrawal.chain == chain.name, Withdrawal.block_number > ancestor.number)
        .order_by(Withdrawal.block_number, Withdrawal.id)
        .with_for_update()
    ).all()
    for withdrawal in gone:
        if withdrawal.status != WithdrawalStatus.BROADCAST:
            assert withdrawal.tx_hash is not None and withdrawal.block_number is not None
            confirmed = withdrawal.status == WithdrawalStatus.CONFIRMED
            _alert(
                session,
                chain,
                "settled_withdrawal_reorged",
                (withdrawal.tx_hash, withdrawal.block_number),
                withdrawal_id=withdrawal.id,
                message=f"{withdrawal.status} withdrawal {withdrawal.id} (tx {withdrawal.tx_hash}, "
                f"block {withdrawal.block_number}) left the chain in a reorg deeper than "
                f"{chain.confirmations} confirmations: "
                + ("its transaction is sent again" if confirmed else "check by hand"),
            )
            if confirmed:
                withdrawal.block_number = withdrawal.block_hash = None
            continue
        withdrawal.tx_hash = withdrawal.block_hash = None
        withdrawal.block_number = withdrawal.network_fee = withdrawal.succeeded = None
        withdrawal.confirmations = 0
        transition(session, catalogue, withdrawal, WithdrawalStatus.BROADCAST, "withdrawal.reorged")


def _sent_again(withdrawal: Withdrawal) -> bool:
    """Whether `withdrawal` is confirmed but its transaction left the chain (`unmine`)."""
    return withdrawal.status == WithdrawalStatus.CONFIRMED and withdrawal.block_number is None


def _alert(
    session: Session,
    chain: Chain,
    kind: AlertKind,
    transaction: tuple[str, int],
    *,
    withdrawal_id: str | None,
    message: str,
) -> None:
    """Log an alert about `transaction` (hash, block) and send it as `custody.alert` to every
    tenant subscribed (the operators)."""
    logger.critical("ALERT %s: %s", chain.name, message)
    tx_hash, block_number = transaction
    alert = CustodyAlertOut(
        chain=chain.name,
        kind=kind,
        tx_hash=tx_hash,
        block_number=block_number,
        withdrawal_id=withdrawal_id,
        message=message,
    )
    tenants = subscribed_tenants(session, "custody.alert")
    emit_many(session, [Event(tenant, "custody.alert", alert) for tenant in tenants])


def settle(
    session: Session, catalogue: Catalogue, chain: Chain, withdrawals: Sequence[Withdrawal]
) -> None:
    """Finish mined withdrawals once confirmed: each posted if its transaction succeeded,
    released if it failed (status 0). Either way the network fee is the house's, from
    `fees:<chain>`. One ledger call posts them all."""
    native = native_asset(catalogue, chain.name).code
    assets = {native, *(w.asset for w in withdrawals)}
    house = {
        (kind, asset): system_account(session, f"{kind}:{chain.name}", asset)
        for kind in ("chain", "fees")
        for asset in assets
    }
    users = user_accounts(session, [(w.wallet_id, w.asset) for w in withdrawals])
    # Every account is locked before the first hold is released: one settlement at a time
    # would lock the chain's house accounts, then another wallet's account, against the id
    # order API requests lock them in.
    lock_accounts(session, [*house.values(), *users.values()])
    holds = [w.hold_id for w in withdrawals if w.hold_id is not None]
    assert len(holds) == len(withdrawals)
    ledger.void_holds(session, holds)
    requests = [_settlement(w, native, house, users[w.wallet_id, w.asset]) for w in withdrawals]
    for withdrawal, result in zip(
        withdrawals, ledger.apply(session, requests, atomic=True), strict=True
    ):
        if result.error is not None:
            raise result.error
        withdrawal.transaction_id = result.transaction_id
        if not withdrawal.succeeded:
            withdrawal.failure_reason = "the transaction was mined with status 0 (reverted)"
    confirmed = [w for w in withdrawals if w.succeeded]
    failed = [w for w in withdrawals if not w.succeeded]
    transition_many(session, catalogue, confirmed, WithdrawalStatus.CONFIRMED)
    transition_many(session, catalogue, failed, WithdrawalStatus.FAILED)


def _settlement(
    withdrawal: Withdrawal, native: str, house: Mapping[tuple[str, str], int], user: int
) -> TransactionRequest:
    """The ledger transaction settling a mined withdrawal, on the chain's house accounts
    (`house`, by kind and asset) and the wallet's account of the asset (`user`)."""
    assert withdrawal.network_fee is not None
    lines: dict[int, int] = {}
    moves = [(house["fees", native], -withdrawal.network_fee)]
    moves.append((house["chain", native], withdrawal.network_fee))
    if withdrawal.succeeded:
        moves.append((user, -withdrawal.amount - withdrawal.fee))
        moves.append((house["chain", withdrawal.asset], withdrawal.amount))
        moves.append((house["fees", withdrawal.asset], withdrawal.fee))
    for account, amount in moves:
        lines[account] = lines.get(account, 0) + amount
    return TransactionRequest(
        reason=Reason.WITHDRAWAL if withdrawal.succeeded else Reason.FEE,
        postings=[Posting(account, amount) for account, amount in sorted(lines.items()) if amount],
        metadata={"withdrawal_id": withdrawal.id, "tx_hash": withdrawal.tx_hash},
        external=ExternalReference(
            EXTERNAL_KIND if withdrawal.succeeded else NETWORK_FEE_KIND, withdrawal.id
        ),
    )
