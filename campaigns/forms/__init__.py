"""The forms of the campaigns app's pages, one module per concern."""
