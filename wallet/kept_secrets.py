"""Secrets a single-machine setup keeps in its data directory, made on first use."""

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def kept_secret(path: Path, make: Callable[[], str]) -> str:
    """Read the secret kept at `path`, creating it with `make` (readable by its owner only)
    the first time.

    The new secret is written to a private temporary file and linked into place, so concurrent
    first uses agree on one secret and nobody reads a half-written file.
    """
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(make() + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        pass  # another process made it first; everyone uses that one
    finally:
        draft.unlink()
    return path.read_text().strip()
