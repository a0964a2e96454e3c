"""Writes of the campaigns app: the actions that change a campaign, its approval, and the ledger's feedback."""
