"""The business rules administrators set (frequency caps, quiet hours) as the delivery rules read them: once every
few seconds a process, not once a slice. Their pages change them rarely; a change reaches every worker within
SECONDS, and the process that saved it at once."""

import time
from dataclasses import dataclass

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from campaigns.models import FrequencyCap, QuietHours

SECONDS = 5.0


@dataclass(frozen=True)
class BusinessRules:
    caps: tuple[FrequencyCap, ...]  # the active ones
    quiet_hours: dict[str, QuietHours]  # the active window of each channel that has one


_loaded: tuple[float, BusinessRules] | None = None


def business_rules() -> BusinessRules:
    global _loaded
    now = time.monotonic()
    if _loaded is None or _loaded[0] <= now:
        rules = BusinessRules(
            caps=tuple(FrequencyCap.objects.filter(is_active=True)),
            quiet_hours={window.channel: window for window in QuietHours.objects.filter(is_active=True)},
        )
        _loaded = (now + SECONDS, rules)
    return _loaded[1]


@receiver([post_save, post_delete], sender=FrequencyCap)
@receiver([post_save, post_delete], sender=QuietHours)
def forget(**kwargs) -> None:
    global _loaded
    _loaded = None
