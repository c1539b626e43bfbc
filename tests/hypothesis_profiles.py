"""Hypothesis profiles: the gate is derandomized (the same examples every run, so the suite
says the same thing each time); `make fuzz` (`WALLET_FUZZ=1`) draws new examples each run,
ten times as many, and keeps the ones that failed in `.hypothesis/` to replay them first.
An example found that way becomes an `@example` regression case of its test."""

import os

from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

settings.register_profile("gate", derandomize=True, print_blob=True)
settings.register_profile(
    "fuzz",
    max_examples=1000,
    database=DirectoryBasedExampleDatabase(".hypothesis/examples"),
    print_blob=True,
)
settings.load_profile("fuzz" if os.environ.get("WALLET_FUZZ") == "1" else "gate")
