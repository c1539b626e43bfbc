"""Checks of every ledger invariant, runnable at any time (`wallet reconcile`)."""

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Check:
    name: str
    violations: list[str]
    notes: list[str] = field(default_factory=list)
    """What the check saw that is not a violation (payments in flight, say)."""

    @property
    def ok(self) -> bool:
        return not self.violations


# Each query returns one text line per violation; an empty result means the invariant holds.
_CHECKS: dict[str, str] = {
    "each asset sums to zero over all accounts": """
        SELECT 'asset ' || asset || ' sums to ' || sum(posted)
        FROM accounts GROUP BY asset HAVING sum(posted) <> 0
    """,
    "each transaction balances per asset": """
        SELECT 'transaction ' || transaction_id || ' is off by ' || sum(amount) || ' ' || asset
        FROM postings GROUP BY transaction_id, asset HAVING sum(amount) <> 0
    """,
    "every balance equals the sum of its postings": """
        SELECT 'account ' || a.id || ' posted ' || a.posted || ' but postings sum to '
               || coalesce(p.total, 0)
        FROM accounts a
        LEFT JOIN (SELECT account_id, sum(amount) AS total FROM postings GROUP BY account_id) p
            ON p.account_id = a.id
        WHERE a.posted <> coalesce(p.total, 0)
    """,
    "versions have no gaps and end at the account's version": """
        SELECT 'account ' || a.id || ' has version ' || a.version || ' but '
               || coalesce(p.n, 0) || ' postings up to version ' || coalesce(p.top, 0)
        FROM accounts a
        LEFT JOIN (SELECT account_id, count(*) AS n, max(account_version) AS top
                   FROM postings GROUP BY account_id) p ON p.account_id = a.id
        WHERE a.version <> coalesce(p.n, 0) OR a.version <> coalesce(p.top, 0)
    """,
    "each posting's balance-after is the running sum": """
        SELECT 'account ' || account_id || ' version ' || account_version
               || ' records ' || posted_after || ' instead of ' || running
        FROM (SELECT account_id, account_version, posted_after,
                     sum(amount) OVER (PARTITION BY account_id ORDER BY account_version)
                         AS running
              FROM postings) s
        WHERE posted_after <> running
    """,
    "pending amounts equal the open holds": """
        SELECT 'account ' || a.id || ' pending out/in ' || a.pending_out || '/' || a.pending_in
               || ' but holds reserve ' || coalesce(o.total, 0) || '/' || coalesce(i.total, 0)
        FROM accounts a
        LEFT JOIN (SELECT debit_account_id AS id, sum(amount) AS total FROM holds
                   WHERE status = 'pending' GROUP BY 1) o ON o.id = a.id
        LEFT JOIN (SELECT credit_account_id AS id, sum(amount) AS total FROM holds
                   WHERE status = 'pending' GROUP BY 1) i ON i.id = a.id
        WHERE a.pending_out <> coalesce(o.total, 0) OR a.pending_in <> coalesce(i.total, 0)
    """,
    "no account that may not go negative is below zero": """
        SELECT 'account ' || id || ' has available ' || (posted - pending_out)
        FROM accounts WHERE NOT allow_negative AND posted - pending_out < 0
    """,
}


def check_ledger(session: Session) -> list[Check]:
    """Run every check as one statement, so that all of them see one snapshot of the ledger."""
    names = list(_CHECKS)
    union = " UNION ALL ".join(
        f"SELECT {number} AS check_number, line::text FROM ({query}) AS c{number}(line)"  # noqa: S608 - fixed queries above
        for number, query in enumerate(_CHECKS.values())
    )
    found: dict[int, list[str]] = {number: [] for number in range(len(names))}
    for number, line in session.execute(text(union)):
        found[number].append(line)
    return [Check(names[number], lines) for number, lines in found.items()]
