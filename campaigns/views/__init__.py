"""The pages of the campaigns app, one module per concern."""
