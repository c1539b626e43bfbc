"""500 random fiat operations from 8 clients against the API, the sandbox bank and a worker:
pay-ins (some failing, returned or charged back), payouts (some failing or returned) and
transfers. Once the bank has settled everything, each wallet holds exactly what the final
statuses say, the ledger's invariants hold, and the bank's report agrees on every payment."""

import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from fiat import SandboxBankClient
from tests.api_fixtures import bearer_client, issue_key
from tests.bank_stack import BANK_KEY, BANK_SECRET, FiatStack
from tests.factories import Factory
from tests.webhook_fixtures import CeleryProcesses, wait_until
from wallet.apikeys.models import Scope
from wallet.assets.service import Catalogue
from wallet.banking.service import compare_with_provider
from wallet.database import unit_of_work
from wallet.ledger.reconcile import check_ledger

CLIENTS = 8
OPERATIONS = 500
PAYIN_FINAL = {"succeeded", "failed", "returned", "charged_back"}
PAYOUT_FINAL = {"paid", "failed", "returned"}


def payin_final(payin: dict[str, Any]) -> bool:
    """Whether the pay-in has its last status: a `succeeded` one whose cents make the sandbox
    return it (.31) or charge it back (.66) later is not final yet."""
    if payin["status"] == "succeeded":
        return not payin["amount"].endswith((".31", ".66"))
    return payin["status"] in PAYIN_FINAL


def cents(text: str) -> int:
    """A USD decimal string, maybe negative, in cents."""
    whole, fraction = text.lstrip("-").split(".")
    return (-1 if text.startswith("-") else 1) * (int(whole) * 100 + int(fraction))


class Client:
    """One of the app's backends, working on its own wallet with the tenant's key."""

    def __init__(self, http: httpx.Client, wallet: str, stack: FiatStack, seed: int) -> None:
        self.http, self.wallet, self.stack = http, wallet, stack
        self.random = random.Random(seed)
        self.account = ""
        self.payins: list[str] = []
        self.payouts: list[str] = []
        self.transfers: list[tuple[str, str, int]] = []
        self.refused: Counter[int] = Counter()

    def link(self) -> None:
        body = {
            "wallet_id": self.wallet,
            "holder_name": "Client",
            "account_number": "12345678",
            "currency": "USD",
            "country": "US",
        }
        self.account = self.http.post("/v1/bank-accounts", json=body).json()["id"]

    def operate(self, others: list[str]) -> None:
        kind = self.random.choice(["payin", "payin", "payout", "transfer"])
        key = {"Idempotency-Key": uuid.uuid4().hex}
        if kind == "payin":
            amount = (
                f"{self.random.randint(5, 50)}.{self.random.choice(['00', '13', '31', '66', '47'])}"
            )
            body = {
                "wallet_id": self.wallet,
                "bank_account_id": self.account,
                "asset": "USD",
                "amount": amount,
            }
            payin = self.payin(body, key)
            self.payins.append(payin["id"])
            self.stack.control.pay(self.provider_payment_id(payin))
        elif kind == "payout":
            amount = f"{self.random.randint(1, 10)}.{self.random.choice(['00', '13', '31'])}"
            destination = {"type": "bank_account", "bank_account_id": self.account}
            body = {"wallet_id": self.wallet, "asset": "USD", "amount": amount}
            answer = self.http.post(
                "/v1/withdrawals", json={**body, "destination": destination}, headers=key
            )
            self.record(answer, lambda document: self.payouts.append(document["id"]))
        else:
            to = self.random.choice(others)
            amount = f"{self.random.randint(0, 5)}.{self.random.randint(1, 99):02d}"
            body = {
                "source_wallet_id": self.wallet,
                "destination_wallet_id": to,
                "asset": "USD",
                "amount": amount,
            }
            answer = self.http.post("/v1/transfers", json=body, headers=key)
            self.record(answer, lambda _: self.transfers.append((self.wallet, to, cents(amount))))

    def payin(self, body: dict[str, str], key: dict[str, str]) -> dict[str, Any]:
        """The pay-in, asked for again under the same key while its request is answered 503:
        the pay-ins ahead of it kept the bank busy longer than it may wait for its turn."""
        deadline = time.monotonic() + 60
        while (answer := self.http.post("/v1/payins", json=body, headers=key)).status_code == 503:
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.1)
        assert answer.status_code == 201, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def provider_payment_id(self, payin: dict[str, Any]) -> str:
        """The bank's id of the pay-in; a bank call that timed out (a loaded machine) left the
        pay-in `unknown`, and the worker asks the bank about it until it has one."""
        deadline = time.monotonic() + 60
        while payin["provider_payment_id"] is None:
            assert time.monotonic() < deadline, payin
            time.sleep(0.2)
            payin = self.http.get(f"/v1/payins/{payin['id']}").json()
        return str(payin["provider_payment_id"])

    def record(self, answer: httpx.Response, made: Any) -> None:
        if answer.status_code == 201:
            made(answer.json())
        else:
            # Not enough money, or a wallet restricted by a chargeback: refused, nothing held.
            assert answer.status_code in {409, 422}, answer.text
            self.refused[answer.status_code] += 1


def test_random_operations_from_eight_clients_reconcile(
    stack: FiatStack,
    worker: CeleryProcesses,
    sessions: sessionmaker[Session],
    catalogue: Catalogue,
) -> None:
    factory = Factory(sessions, catalogue)
    http = bearer_client(stack.api_url, issue_key(sessions, factory.tenant_id, *tuple(Scope)))
    clients = [Client(http, factory.wallet(f"client-{n}"), stack, n) for n in range(CLIENTS)]
    wallets = [c.wallet for c in clients]
    for client in clients:
        client.link()
    lock = threading.Lock()
    remaining = [OPERATIONS]

    def work(client: Client) -> None:
        others = [w for w in wallets if w != client.wallet]
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            client.operate(others)

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(work, clients))

    def settled() -> bool:
        for client in clients:
            for payin_id in client.payins:
                if not payin_final(http.get(f"/v1/payins/{payin_id}").json()):
                    return False
            for payout_id in client.payouts:
                if http.get(f"/v1/payouts/{payout_id}").json()["status"] not in PAYOUT_FINAL:
                    return False
        return True

    wait_until(settled, timeout=180, interval=1.0)

    expected = dict.fromkeys(wallets, 0)
    statuses: Counter[str] = Counter()
    for client in clients:
        for payin_id in client.payins:
            payin = http.get(f"/v1/payins/{payin_id}").json()
            statuses[f"payin.{payin['status']}"] += 1
            if payin["status"] == "succeeded":
                expected[client.wallet] += cents(payin["net_amount"])
        for payout_id in client.payouts:
            payout = http.get(f"/v1/payouts/{payout_id}").json()
            statuses[f"payout.{payout['status']}"] += 1
            if payout["status"] == "paid":
                expected[client.wallet] -= cents(payout["amount"]) + cents(payout["fee"])
        for source, destination, amount in client.transfers:
            expected[source] -= amount
            expected[destination] += amount
    for wallet in wallets:
        balances = http.get(f"/v1/wallets/{wallet}/balances").json()["balances"]
        usd = next(b for b in balances if b["asset"] == "USD")
        assert (
            cents(usd["posted"].lstrip("-")) * (-1 if usd["posted"].startswith("-") else 1)
        ) == expected[wallet]
        assert (usd["pending_in"], usd["pending_out"]) == ("0.00", "0.00")
    assert {"payin.succeeded", "payin.failed", "payin.returned", "payout.paid"} <= set(statuses)

    with unit_of_work(sessions) as session:
        assert all(check.ok for check in check_ledger(session)), check_ledger(session)
        with SandboxBankClient(stack.sandbox.options.url, BANK_KEY, BANK_SECRET) as bank:
            differences = compare_with_provider(session, bank)
    ours = {p for c in clients for p in (*c.payins, *c.payouts)}
    disagreeing = [r for d in differences for r in d.records if any(p in r for p in ours)]
    assert disagreeing == []
    http.close()
