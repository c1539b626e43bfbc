"""Compiled devnet contracts (TestUSD, Forwarder), loaded from the committed artifacts.json.

Regenerate the artifact with `node chains/contracts/compile.mjs` after editing a .sol file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

ARTIFACTS_FILE = "artifacts.json"


@dataclass(frozen=True, slots=True)
class ContractArtifact:
    """A compiled contract: its ABI and creation bytecode (0x-prefixed hex)."""

    name: str
    abi: tuple[Mapping[str, Any], ...]
    bytecode: str


@cache
def load_artifacts() -> Mapping[str, ContractArtifact]:
    """Return every compiled contract in artifacts.json, by contract name."""
    text = resources.files(__name__).joinpath(ARTIFACTS_FILE).read_text(encoding="utf-8")
    raw = json.loads(text)
    return {
        name: ContractArtifact(name=name, abi=tuple(c["abi"]), bytecode=c["bytecode"])
        for name, c in raw["contracts"].items()
    }


def load_artifact(name: str) -> ContractArtifact:
    """Return the compiled contract called `name` (e.g. "TestUSD"); KeyError if there is none."""
    return load_artifacts()[name]
