"""The settings the service reads, by their environment names (``STREAMER_DATA_DIR``, …)."""

from __future__ import annotations

from streamer.config import Settings

__all__ = ["SETTINGS"]

SETTINGS = frozenset(f"STREAMER_{name.upper()}" for name in Settings.model_fields)
