"""Delivery: one worker per stream reading the log from its own position."""
