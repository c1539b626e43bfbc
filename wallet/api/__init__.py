"""The app-facing HTTP API."""
