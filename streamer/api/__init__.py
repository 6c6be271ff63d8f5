"""The HTTP API: ingest, streams (v2 and legacy v1), tokens, health, metrics, OpenAPI."""
