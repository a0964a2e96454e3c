"""Delivery rules: who gets a message, and when.

Every message passes through the same ordered rules (`pipeline.RULES`) when it is planned (a scheduled run's
chunk, a trigger call) and again, for the rules that can change in between, when a worker has claimed it for
sending. Each rule is a small module with one interface (`base.Rule`): for the candidates still eligible, it
decides to exclude one with a reason (a `Delivery.Reason`) or sets when to send it (`due_at`). A new rule goes in a
module of its own here, on `base.Rule`, with its place in `pipeline.RULES` and its reason code in `Delivery.Reason`.
"""

from campaigns.rules.base import Batch, Candidate, Stage
from campaigns.rules.pipeline import RULES, decide

__all__ = ["RULES", "Batch", "Candidate", "Stage", "decide"]
