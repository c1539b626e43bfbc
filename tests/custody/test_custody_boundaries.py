"""custody stands alone: importing it loads no other service package, database or HTTP client."""

import subprocess
import sys

FORBIDDEN_TOP_LEVEL = (
    "wallet",
    "chains",
    "fiat",
    "web3",
    "sqlalchemy",
    "psycopg",
    "httpx",
    "requests",
    "celery",
    "redis",
)


def test_importing_custody_loads_no_forbidden_package() -> None:
    probe = (
        "import sys, custody, custody.hd, custody.keystore, custody.seed, custody.signer\n"
        f"forbidden = {FORBIDDEN_TOP_LEVEL!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in forbidden))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
