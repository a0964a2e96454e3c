import mailbox

from django.core.management.base import BaseCommand, CommandError

from channels.feedback import FeedbackError, feedback_deliver, mailbox_messages, parse_report
from channels.models import ChannelConfiguration


class Command(BaseCommand):
    help = (
        "Take in the bounces (RFC 3464 delivery status notifications) and complaint reports (RFC 5965) that a "
        "relay delivered to a mailbox: each names its delivery by the VERP address it was sent to or by the "
        "original Message-ID, and is applied to the ledger. Safe to run again over the same messages."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--mbox", metavar="FILE", help="An mbox file.")
        source.add_argument("--maildir", metavar="DIR", help="A Maildir (with cur/, new/ and tmp/).")
        parser.add_argument(
            "--configuration",
            type=int,
            metavar="PK",
            help="The email configuration whose mail bounced here. Without it, only reports that carry a VERP "
            "delivery id can be matched.",
        )
        parser.add_argument(
            "--delete", action="store_true", help="Maildir only: delete each message once it has been taken in."
        )

    def handle(self, *args, mbox=None, maildir=None, configuration=None, delete=False, **options):
        if delete and not maildir:
            raise CommandError("--delete works with --maildir only (an mbox file is rotated by whoever writes it).")
        if configuration is not None and not ChannelConfiguration.objects.filter(pk=configuration).exists():
            raise CommandError(f"There is no channel configuration {configuration}.")
        totals = {"reports": 0, "not_reports": 0, "applied": 0, "unchanged": 0, "unmatched": 0, "ignored": 0}
        taken = []
        try:
            for key, raw in mailbox_messages(mbox=mbox, maildir=maildir):
                try:
                    events = parse_report(raw, configuration_id=configuration)
                except FeedbackError as exc:
                    totals["not_reports"] += 1
                    self.stderr.write(f"skipped message {key}: {exc}")
                    continue
                totals["reports"] += 1
                for name, value in feedback_deliver(events).items():
                    totals[name] = totals.get(name, 0) + value
                taken.append(key)
        except FileNotFoundError as exc:
            raise CommandError(f"No such mailbox: {exc}") from None
        if delete and taken:
            box = mailbox.Maildir(maildir, create=False)
            for key in taken:
                box.discard(key)
        self.stdout.write(", ".join(f"{name.replace('_', ' ')}: {value}" for name, value in totals.items()))
