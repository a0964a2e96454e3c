"""What the permissions app asks the apps above it (config.hooks explains hooks)."""

from config.hooks import ProviderHook, SectionsHook

# The campaigns an API key may be scoped to (campaigns answer with campaigns.uses.KeyCampaigns): the choices of
# the API key form, which ids may be chosen, and the names the key pages show.
key_campaigns = ProviderHook("which campaigns an API key may be scoped to")

# Where the forbidden page offers to go back to, for the viewer (each a Section: title and URL).
forbidden_page_links = SectionsHook("the forbidden page")
