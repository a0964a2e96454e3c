"""Writes of the permissions app: API keys, invitations, users, custom roles, audit, notifications, login failures."""
