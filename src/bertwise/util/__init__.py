"""Helpers every layer may use: atomic file writes, the kill test hook, formatting."""
