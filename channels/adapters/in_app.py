"""In-app: messages go into the profile's inbox in our own database, which apps read through channels.api."""

from django.db import IntegrityError, transaction

from audiences.models import Profile
from channels.adapters.base import Adapter, OutboundMessage, Outcome, Reason, SendResult
from channels.models import InboxMessage


class InAppAdapter(Adapter):
    channel = "in_app"

    def send(self, messages: list[OutboundMessage]) -> list[SendResult]:
        if not messages:
            return []
        wanted = {message.delivery_id: _profile_id(message.to) for message in messages}
        existing = set(Profile.objects.filter(pk__in={pk for pk in wanted.values() if pk}).values_list("pk", flat=True))
        rows = [
            InboxMessage(
                profile_id=wanted[message.delivery_id],
                configuration_id=self.configuration_id,
                delivery_id=message.delivery_id,
                title=message.subject[:500],
                body_html=message.html,
                body_text=message.text,
            )
            for message in messages
            if wanted[message.delivery_id] in existing
        ]
        try:
            with transaction.atomic():
                # A delivery sent again (a retry after an unknown outcome) finds its row and adds none.
                InboxMessage.objects.bulk_create(rows, ignore_conflicts=True)
        except IntegrityError as exc:
            # A profile erased between the check and the insert: the next attempt leaves it out.
            return [
                SendResult(m.delivery_id, Outcome.TRANSIENT, reason=Reason.PROVIDER_ERROR, detail=str(exc)[:500])
                for m in messages
            ]
        ids = dict(
            InboxMessage.objects.filter(configuration_id=self.configuration_id, delivery_id__in=wanted).values_list(
                "delivery_id", "pk"
            )
        )
        results = []
        for message in messages:
            if message.delivery_id in ids:
                results.append(
                    SendResult(
                        message.delivery_id, Outcome.SENT, provider_message_id=f"inbox:{ids[message.delivery_id]}"
                    )
                )
            else:
                results.append(
                    SendResult(
                        message.delivery_id, Outcome.PERMANENT, reason=Reason.INVALID_ADDRESS, detail="no such profile"
                    )
                )
        return results


def _profile_id(address: str) -> int | None:
    return int(address) if address.isdigit() else None
