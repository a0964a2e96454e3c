"""Forms of the channel pages: configurations (generated from the settings models) and the suppression list."""
