"""The sandbox bank's own storage."""

from pathlib import Path

from fiat.sandbox.store import open_store


def test_the_store_opens_in_a_data_directory_that_does_not_exist_yet(tmp_path: Path) -> None:
    # `wallet run` starts the sandbox next to the processes that create the data directory.
    path = tmp_path / "data" / "sandbox-bank.sqlite3"
    connection = open_store(path)
    connection.close()
    assert path.is_file()
