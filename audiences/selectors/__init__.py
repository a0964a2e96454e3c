"""The audiences app's reads, one concern a module."""
