"""Channel pages: configurations, the suppression list, and the public endpoints (unsubscribe links, webhooks)."""
