"""The committed contract artifact is exactly what compile.mjs produces from the sources."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from chains.contracts import load_artifact, load_artifacts

CONTRACTS = Path(__file__).resolve().parents[2] / "chains" / "contracts"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_compiling_the_sources_reproduces_the_committed_artifact(tmp_path: Path) -> None:
    output = tmp_path / "artifacts.json"
    subprocess.run(
        ["node", str(CONTRACTS / "compile.mjs"), str(output)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert output.read_text() == (CONTRACTS / "artifacts.json").read_text()


def test_artifacts_hold_both_contracts_with_abi_and_bytecode() -> None:
    assert set(load_artifacts()) == {"TestUSD", "Forwarder"}
    token = load_artifact("TestUSD")
    functions = {entry["name"] for entry in token.abi if entry["type"] == "function"}
    assert {"mint", "transfer", "transferFrom", "approve", "balanceOf", "decimals"} <= functions
    assert token.bytecode.startswith("0x") and len(token.bytecode) > 100
    forwarder = load_artifact("Forwarder")
    assert any(e.get("name") == "forward" for e in forwarder.abi)
    raw = json.loads((CONTRACTS / "artifacts.json").read_text())
    assert raw["compiler"].startswith("0.8.37")
