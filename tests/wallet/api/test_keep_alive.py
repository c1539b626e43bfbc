"""The API keeps an idle connection open longer than its clients keep theirs."""

from tests.api_helpers import assert_idle_connection_outlives


def test_an_idle_connection_stays_open_longer_than_an_httpx_client_keeps_it(api_url: str) -> None:
    assert_idle_connection_outlives(5.0, api_url)
