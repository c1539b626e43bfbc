"""The bank-provider port: what the core asks of a bank or payment provider.

Every create carries our idempotency key. Repeating it with the same request repeats the
first answer; `get_payin`/`get_payout` by the key give the current state. So a call that
ended in `OutcomeUnknown` is resolved by asking with that key: `NotFound` means the provider
never took it, and the create may be sent again under the same key. Implementations:
`fiat.client.SandboxBankClient` over HTTP, `fiat.fake.InMemoryBankProvider` for unit tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from fiat.errors import ProviderRejected
from fiat.model import (
    BalanceReport,
    BankAccountDetails,
    LinkedBankAccount,
    Payin,
    PayinRequest,
    Payout,
    PayoutRequest,
    ProviderEvent,
)

# Pay-ins one `create_payins` call may carry.
MAX_PAYINS_PER_CALL = 100


class BankProvider(Protocol):
    """Raises `ProviderRejected` for a definite refusal, `OutcomeUnknown` for no answer."""

    @property
    def name(self) -> str:
        """Short stable name of the provider, e.g. for `bank:<name>:<asset>` accounts."""
        ...

    def link_bank_account(self, details: BankAccountDetails) -> LinkedBankAccount: ...

    def get_bank_account(self, token: str) -> LinkedBankAccount:
        """The account behind a token the provider issued (e.g. by its own hosted form)."""
        ...

    def create_payins(
        self, requests: Sequence[PayinRequest]
    ) -> tuple[Payin | ProviderRejected, ...]:
        """Create up to `MAX_PAYINS_PER_CALL` pay-ins in one call, each under its own key: one
        answer per request, in order, the pay-in or the provider's refusal of that one.
        `OutcomeUnknown` if the call got no answer: any of them may have been created."""
        ...

    def create_payout(self, request: PayoutRequest) -> Payout: ...

    def get_payin(self, idempotency_key: str) -> Payin:
        """The pay-in created under our key; `NotFound` if the provider never took it."""
        ...

    def get_payout(self, idempotency_key: str) -> Payout:
        """The payout created under our key; `NotFound` if the provider never took it."""
        ...

    def balance_reports(self) -> tuple[BalanceReport, ...]:
        """Our balance at the provider, one report per currency, with the payments behind it."""
        ...

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> tuple[ProviderEvent, ...]:
        """The events of one delivery: signature and timestamp verified, then parsed;
        `WebhookRejected` if either fails."""
        ...
