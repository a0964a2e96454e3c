"""What the audiences app asks the apps above it (config.hooks explains hooks)."""

from config.hooks import SectionsHook, UsesHook

# What sends to each audience (campaigns fill it): an audience in use is not deleted, and a change to it names
# who it affects.
audience_uses = UsesHook("audience")

# The parts of a profile's page served by the apps above (campaigns: the messages the profile received).
profile_sections = SectionsHook("the profile page")
