"""The notifications inbox and the bell: each user sees and changes only their own."""

import django_rq
import pytest
from django.core import mail
from django.template import Context, Template
from django.urls import reverse

from config.queues import MAINTENANCE
from permissions.models import Notification
from permissions.services.notifications import notification_send
from tests.conftest import run_burst_worker


def _notify(user, title="Campaign waiting for approval", url="/campaigns/"):
    notification_send(users=[user], title=title, url=url, email=False)
    return Notification.objects.filter(user=user).latest("id")


def test_the_inbox_lists_only_the_users_own_notifications(client, personas):
    _notify(personas["vera"], title="For Vera")
    _notify(personas["manny"], title="For Manny")
    client.force_login(personas["vera"])

    response = client.get(reverse("permissions:notifications"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "For Vera" in page and "For Manny" not in page


def test_a_user_without_a_role_has_an_inbox_and_anonymous_visitors_log_in(client, personas):
    _notify(personas["otto"], title="Welcome")
    client.force_login(personas["otto"])
    assert client.get(reverse("permissions:notifications")).status_code == 200

    client.logout()
    response = client.get(reverse("permissions:notifications"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_bell_counts_unread_notifications(client, personas):
    for number in range(3):
        _notify(personas["vera"], title=f"Note {number}")
    _notify(personas["manny"])
    client.force_login(personas["vera"])

    page = client.get(reverse("campaigns:list")).content.decode()

    assert '<span class="bell-count">3<span class="visually-hidden"> unread</span></span>' in page


def test_the_bell_costs_one_query(personas, django_assert_num_queries):
    _notify(personas["vera"])
    template = Template("{% load notifications %}{% unread_notification_count user as unread %}{{ unread }}")

    with django_assert_num_queries(1):
        assert template.render(Context({"user": personas["vera"]})) == "1"


def test_opening_a_notification_marks_it_read_and_follows_its_link(client, personas):
    notification = _notify(personas["vera"], url="/campaigns/")
    client.force_login(personas["vera"])

    response = client.post(reverse("permissions:notification_open", args=[notification.pk]))

    assert response.status_code == 302 and response["Location"] == "/campaigns/"
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_a_notification_never_leads_off_the_site(client, personas):
    notification = _notify(personas["vera"], url="//evil.example/phish")
    client.force_login(personas["vera"])

    response = client.post(reverse("permissions:notification_open", args=[notification.pk]))

    assert response["Location"] == reverse("permissions:notifications")


def test_another_users_notification_is_not_found_and_stays_unread(client, personas):
    notification = _notify(personas["manny"])
    client.force_login(personas["vera"])

    response = client.post(reverse("permissions:notification_open", args=[notification.pk]))

    assert response.status_code == 404
    notification.refresh_from_db()
    assert notification.read_at is None


def test_mark_all_read_touches_only_the_users_own(client, personas):
    _notify(personas["vera"])
    _notify(personas["vera"])
    other = _notify(personas["manny"])
    client.force_login(personas["vera"])

    client.post(reverse("permissions:notifications_read_all"))

    assert not Notification.objects.filter(user=personas["vera"], read_at__isnull=True).exists()
    other.refresh_from_db()
    assert other.read_at is None


def test_marking_read_needs_a_post(client, personas):
    notification = _notify(personas["vera"])
    client.force_login(personas["vera"])

    assert client.get(reverse("permissions:notification_open", args=[notification.pk])).status_code == 405
    assert client.get(reverse("permissions:notifications_read_all")).status_code == 405


# Email, off the request path: one job per batch on the maintenance queue


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_emailed_by_one_job_that_sends_each_message_once_even_when_run_twice(personas, redis, settings):
    settings.SITE_URL = "https://campaigns.example.com"
    personas["otto"].email = ""
    personas["otto"].save()
    queue = django_rq.get_queue(MAINTENANCE)

    notification_send(
        users=[personas["vera"], personas["manny"], personas["otto"]],
        title="Campaign waiting",
        body="Please look.",
        url="/campaigns/",
    )

    assert not mail.outbox
    [job] = queue.get_jobs()
    assert job.func_name == "permissions.jobs.send_notification_emails"
    run_burst_worker()
    queue.enqueue(job.func_name, *job.args)  # the same batch again, as a retried job would be
    run_burst_worker()

    assert sorted(message.to for message in mail.outbox) == [["manny@example.com"], ["vera@example.com"]]
    assert mail.outbox[0].subject == "Campaign waiting"
    assert mail.outbox[0].body == "Please look.\n\nhttps://campaigns.example.com/campaigns/"
    assert Notification.objects.filter(user=personas["otto"], emailed_at__isnull=True).exists()


def test_in_app_only_notifications_enqueue_no_email(personas, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        notification_send(users=[personas["vera"]], title="In the app only", email=False)

    assert Notification.objects.filter(user=personas["vera"], title="In the app only").exists()
    assert callbacks == []
