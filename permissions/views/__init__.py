"""Settings pages, one module per tab: users, roles, the audit log, notifications, and the invitation page."""
