"""`run_in_turn`: the payments' transactions of a process one at a time, the provider's events
before the requests waiting."""

import threading
import time
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from wallet.banking.service import run_in_turn


def test_one_at_a_time_urgent_callers_first_each_kind_in_order_of_arrival(
    sessions: sessionmaker[Session],
) -> None:
    holding, release = threading.Event(), threading.Event()
    ran: list[str] = []
    inside = 0
    most_inside = 0

    def work(name: str, wait: threading.Event | None = None) -> Callable[[Session], None]:
        def run(session: Session) -> None:
            nonlocal inside, most_inside
            inside += 1
            most_inside = max(most_inside, inside)
            session.execute(text("SELECT 1"))
            if wait is not None:
                holding.set()
                wait.wait(timeout=10)
            ran.append(name)
            inside -= 1

        return run

    def start(name: str, urgent: bool, wait: threading.Event | None = None) -> threading.Thread:
        thread = threading.Thread(
            target=run_in_turn, args=(sessions, work(name, wait)), kwargs={"urgent": urgent}
        )
        thread.start()
        return thread

    threads = [start("holder", urgent=False, wait=release)]
    assert holding.wait(timeout=10)
    for n in range(3):
        threads.append(start(f"request {n}", urgent=False))
        time.sleep(0.1)  # each waiting before the next comes
    for n in range(2):
        threads.append(start(f"event {n}", urgent=True))
        time.sleep(0.1)
    release.set()
    for thread in threads:
        thread.join(timeout=10)

    assert ran == ["holder", "event 0", "event 1", "request 0", "request 1", "request 2"]
    assert most_inside == 1
