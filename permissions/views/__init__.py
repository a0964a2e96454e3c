"""Settings pages, one module a tab: users, roles, API keys, audit log, notifications, the invitation page."""
