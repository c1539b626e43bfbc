"""The app-facing HTTP API."""

# Seconds an idle connection stays open: longer than clients keep theirs (httpx 5 s, many
# proxies 60 s), so that no client sends a request on a connection the server is closing.
KEEP_ALIVE_SECONDS = 75
