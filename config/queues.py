"""Queue names. Transactional work has workers of its own, so it never waits behind a large campaign."""

TRANSACTIONAL = "transactional"
TRIGGERED = "triggered"
CAMPAIGNS = "campaigns"
MAINTENANCE = "maintenance"

QUEUE_NAMES = (TRANSACTIONAL, TRIGGERED, CAMPAIGNS, MAINTENANCE)
