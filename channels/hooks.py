"""What the channels app asks the apps above it (config.hooks explains hooks)."""

from config.hooks import UsesHook

# What sends through each channel configuration (campaigns fill it): a configuration in use is not deleted.
configuration_uses = UsesHook("channel configuration")
