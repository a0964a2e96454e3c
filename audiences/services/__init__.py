"""The audiences app's writes, one concern a module."""
