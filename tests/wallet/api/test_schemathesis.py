"""Schemathesis against the running server's OpenAPI document: every phase (examples, coverage,
fuzzing, stateful through the links), every check, with a key of every scope.

For generated requests, valid and invalid: no 5xx, each response matches the documented
status, content type, headers and schema, schema-invalid requests are refused, schema-valid
ones pass validation (`contract_checks`), every error is a problem document.

The gate is deterministic (a fixed seed, derandomized generation): it says the same thing every
run. `make fuzz` runs the same test with a new seed, more examples, and a database of the
examples that failed, replayed first on the next run; each failure it finds becomes a
regression case in `test_contract.py`.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.api_fixtures import ALL_SCOPES, issue_key
from tests.factories import Factory
from wallet.assets.service import Catalogue

ROOT = Path(__file__).parents[3]
FUZZING = os.environ.get("WALLET_FUZZ") == "1"
GATE_EXAMPLES = 100
FUZZ_EXAMPLES = 1000

# The repository's schemathesis.toml (business rules beyond the schema answer schema-valid
# requests with 422; `contract_checks` allows only those), then wallets to move money between.
WALLETS = """
[dictionaries.funded]
values = ["{source}"]

[dictionaries.other]
values = ["{destination}"]

[parameters]
"body.source_wallet_id" = {{ dictionary = "funded", probability = 0.5 }}
"body.destination_wallet_id" = {{ dictionary = "other", probability = 0.5 }}
"""


@pytest.fixture
def funded_key(sessions: sessionmaker[Session], catalogue: Catalogue) -> tuple[str, str, str]:
    """A key of every scope, a wallet of its tenant with money to move and another wallet."""
    factory = Factory(sessions, catalogue)
    source = factory.wallet()
    for asset in ("USD", "EUR"):
        factory.fund(source, asset, 10**15)
    key = issue_key(sessions, factory.tenant_id, *ALL_SCOPES)
    return key, source, factory.wallet()


# The run in three parts that pytest-xdist gives to different workers: the phases that go
# through every operation together (the stateful phase follows the links between them), and
# the fuzzing phase, the longest, in two halves: the operations of these tags, and all others.
FIRST_HALF_TAGS = "^(wallets|transfers|webhook-endpoints|assets|health|deposits)$"
PARTS = {
    "examples-coverage-stateful": ["--phases", "examples,coverage,stateful"],
    "fuzzing-first-half": ["--phases", "fuzzing", "--include-tag-regex", FIRST_HALF_TAGS],
    "fuzzing-second-half": ["--phases", "fuzzing", "--exclude-tag-regex", FIRST_HALF_TAGS],
}


# 100 examples of every operation and phase against a server traced by coverage: minutes;
# `make fuzz`'s 1,000 take longer.
@pytest.mark.timeout(7200 if FUZZING else 1200)
@pytest.mark.parametrize("part", PARTS)
def test_the_api_keeps_to_its_schema(
    api_url: str, funded_key: tuple[str, str, str], tmp_path: Path, part: str
) -> None:
    key, source, destination = funded_key
    config = tmp_path / "schemathesis.toml"
    wallets = WALLETS.format(source=source, destination=destination)
    config.write_text((ROOT / "schemathesis.toml").read_text() + wallets)
    command = [
        *(str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config), "run"),
        *(f"{api_url}/openapi.json", "--header", f"Authorization: Bearer {key}"),
        *("--checks", "all", "--workers", "1", "--no-color", *PARTS[part]),
    ]
    if FUZZING:
        database = ROOT / ".schemathesis" / "examples"
        command += ["--max-examples", str(FUZZ_EXAMPLES), "--generation-database", str(database)]
        reproduction = ROOT / ".schemathesis" / f"test_found_failures_{part.replace('-', '_')}.py"
        command += ["--report", "pytest", "--report-pytest-path", str(reproduction)]
    else:
        command += ["--max-examples", str(GATE_EXAMPLES), "--seed", "1"]
        command += ["--generation-deterministic"]
    # Schemathesis runs none of the service's code: its process is left out of coverage (whose
    # tracing of its data generation took 200 s of CPU instead of 118).
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COV")},
        "SCHEMATHESIS_HOOKS": "tests.wallet.api.contract_checks",
        "PYTHONPATH": str(ROOT),
    }
    run = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False
    )
    print(run.stdout)
    assert run.returncode == 0, run.stdout[-30_000:] + run.stderr[-5_000:]
