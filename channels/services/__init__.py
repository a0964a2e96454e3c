"""Writes of the channels app: configurations, the suppression list, texts received by SMS."""
