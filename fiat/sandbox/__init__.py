"""A sandbox bank: a separate process with its own HTTP API, API keys and SQLite database.

Run it with `python -m fiat.sandbox --port 8700 --data bank.sqlite3 --webhook-url URL
--webhook-secret whsec_...` (`--help` lists the delays). It behaves like a bank or payment
provider, deterministically:

- Linking an account number that ends in `0000` is refused (`account_closed`). Currencies:
  USD and EUR; a payment's currency must be its bank account's.
- A pay-in starts `pending` until the customer pays: `POST /sandbox/payins/{id}/pay`, or by
  itself after `--auto-pay-delay`. It is then `processing`, and after `--settle-delay`
  `succeeded`, or `failed` if its amount ends in .13.
- A payout starts `pending`, is `processing` after `--processing-delay`, then after
  `--settle-delay` `paid`, or `failed` if its amount ends in .13.
- An amount ending in .31 is `returned` `--return-delay` after it succeeded or was paid; a
  pay-in ending in .66 is `charged_back` `--chargeback-delay` after it succeeded.
- Every create takes an `Idempotency-Key`: the same key and body replay the first answer
  (refusals included), the same key with another body is refused with 409.
- Each status change is a `payin.<status>` or `payout.<status>` event, POSTed to the webhook
  URL signed with Standard Webhooks and retried with exponential backoff until a 2xx.
- `PATCH /sandbox/settings` switches an outage (`unavailable`, `timeout`, `error_after`,
  `timeout_after`: see `Outage`), duplicated or reversed webhook delivery, and the URL.
- `PATCH /sandbox/payments/{id}` changes a record silently (to plant a reconciliation
  difference); `GET /v1/reports/balances` reports the balance per currency.
"""

from fiat.sandbox.bank import Timings
from fiat.sandbox.control import SandboxControl, SandboxProcess, start_sandbox
from fiat.sandbox.server import main, parse_options, serve
from fiat.sandbox.settings import Options, Outage

__all__ = [
    "Options",
    "Outage",
    "SandboxControl",
    "SandboxProcess",
    "Timings",
    "main",
    "parse_options",
    "serve",
    "start_sandbox",
]
