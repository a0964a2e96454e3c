"""django-post_office on the same work, for `manage.py bench_send --post-office`: a settings module of its own (the
product never installs post_office: it is installed on demand in the virtualenv, never in requirements.lock,
INSTALLED_APPS or the tests) and the two steps run in child processes:

    python -m campaigns.management.commands._bench_send_post_office prepare --count N
    python -m campaigns.management.commands._bench_send_post_office send --processes N

`prepare` migrates post_office's database (BENCH_PO_DATABASE_URL) and queues N emails from one EmailTemplate with
the campaign's personalization (the same five attributes and loop, in Django's template language), rendered on
delivery as the product renders at send time; `send` is its `send_queued_mail` with N processes (its defaults:
batches of 100, 5 threads a process), to the sink at BENCH_PO_SMTP_PORT.
"""

import argparse
import os
from urllib.parse import urlsplit

SECRET_KEY = "bench-send-post-office"  # noqa: S105 - a throwaway database of synthetic mail
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "post_office"]
_url = urlsplit(os.environ.get("BENCH_PO_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/campaigns_bench_po"))
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _url.path.lstrip("/"),
        "USER": _url.username or "",
        "PASSWORD": _url.password or "",
        "HOST": _url.hostname or "",
        "PORT": _url.port or "",
    }
}
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = int(os.environ.get("BENCH_PO_SMTP_PORT", "2600"))
POST_OFFICE = {"BACKENDS": {"default": "django.core.mail.backends.smtp.EmailBackend"}, "LOG_LEVEL": 1}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}

SUBJECT = "{{ first_name }}, your {{ plan }} news from {{ city }}"
HTML = (
    "<h1>Hello {{ first_name }} from {{ city }}</h1><p>You are on the {{ plan }} plan with {{ points }} points.</p>"
    "<ul>{% for interest in interests %}<li>{{ interest }}</li>{% endfor %}</ul>"
    '<p>See you soon,<br>Shop</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)


def _prepare(count: int) -> None:
    from django.core.management import call_command
    from post_office import mail
    from post_office.models import Email, EmailTemplate

    call_command("migrate", verbosity=0)
    Email.objects.all().delete()
    template, _ = EmailTemplate.objects.update_or_create(
        name="bench-send", defaults={"subject": SUBJECT, "html_content": HTML, "content": ""}
    )
    cities, plans = ("Lyon", "Paris", "Nantes", "Lille", "Brest"), ("Free", "Pro", "Team")
    interests = (["cycling", "cooking", "travel"], ["music", "books", "films"])
    for start in range(0, count, 2000):
        mail.send_many(
            [
                {
                    "sender": "Shop <news@example.com>",
                    "recipients": [f"s{n}@send.bench.test"],
                    "template": template,
                    "render_on_delivery": True,
                    "context": {
                        "first_name": f"Reader {n}",
                        "city": cities[n % 5],
                        "plan": plans[n % 3],
                        "points": n % 1000,
                        "interests": interests[n % 2],
                        "unsubscribe_url": f"https://example.com/u/{n}/",
                    },
                }
                for n in range(start, min(count, start + 2000))
            ]
        )
    print(f"queued {Email.objects.count()}", flush=True)


def _send(processes: int, lockfile: str) -> None:
    from django.core.management import call_command

    call_command("send_queued_mail", processes=processes, lockfile=lockfile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("prepare").add_argument("--count", type=int, required=True)
    send = commands.add_parser("send")
    send.add_argument("--processes", type=int, required=True)
    send.add_argument("--lockfile", required=True)
    args = parser.parse_args()
    os.environ["DJANGO_SETTINGS_MODULE"] = "campaigns.management.commands._bench_send_post_office"
    import django

    django.setup()
    if args.command == "prepare":
        _prepare(args.count)
    else:
        _send(args.processes, args.lockfile)


if __name__ == "__main__":
    main()
