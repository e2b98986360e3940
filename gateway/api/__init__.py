"""The partner-facing HTTP API."""
