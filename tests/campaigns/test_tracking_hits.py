"""Tracking hits written many at a time (campaigns.services.tracking): grouped into one row per message, link and
whose, a machine's decided by the message's sending time in the statement, a missing message left out; a web
process answers the tracking links without waiting for the database, writes what it kept within the interval and
the rest as it stops, and keeps what the database could not take."""

import http.client
import os
import subprocess
import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.core import signing
from django.db import connection
from django.utils import timezone

from campaigns import tracking
from campaigns.models import Delivery, Engagement
from campaigns.services.tracking import Hit, _Pending, hits_record
from tests.campaigns.test_execution import make_profiles
from tests.campaigns.test_tracking import BROWSER, PERSON, SALE, TRACKING, _activated, _path, click_path, open_path
from tests.conftest import make_email_configuration
from tests.processes import connection_params, database_url, wait_for
from tests.smtp_servers import free_port
from tests.test_procfile import ROOT, web_command

pytestmark = pytest.mark.django_db
# Another server connection holding a row, or a server that refuses connections: PostgreSQL's.
postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL server's behaviour")


@pytest.fixture
def deliveries(redis, personas) -> list[Delivery]:
    """Three messages of a campaign that tracks opens and clicks: two sent a minute ago, one two seconds ago."""
    make_profiles(3)
    run_id = _activated(personas, make_email_configuration(port=25, utm_parameters=True, **TRACKING))
    rows = list(Delivery.objects.filter(run_id=run_id).order_by("pk"))
    now = timezone.now()
    for row, ago in zip(rows, (timedelta(minutes=1), timedelta(minutes=1), timedelta(seconds=2)), strict=True):
        Delivery.objects.filter(pk=row.pk).update(status=Delivery.Status.SENT, sent_at=now - ago)
    return rows


def _counted() -> dict:
    return {
        (row.delivery_id, row.kind, row.link, row.machine): row.count
        for row in Engagement.objects.order_by("delivery_id", "kind", "link", "machine")
    }


@pytest.mark.both_databases
def test_hits_are_written_together_one_row_per_message_link_and_whose(deliveries):
    a, b, fresh = deliveries
    now = timezone.now()

    hits_record(
        [
            Hit(a.pk, None, False, now - timedelta(seconds=3)),
            Hit(a.pk, None, False, now - timedelta(seconds=1)),
            Hit(a.pk, None, False, now - timedelta(seconds=2)),
            Hit(a.pk, None, True, now),  # a mail privacy proxy
            Hit(b.pk, 0, False, now),
            Hit(b.pk, 0, False, now),
            Hit(b.pk, 1, False, now),
            Hit(fresh.pk, None, False, now),  # two seconds after its sending: a machine's
            Hit(fresh.pk, 0, False, now),
            Hit(a.pk + 10_000, None, False, now),  # no such message
        ]
    )
    hits_record([Hit(a.pk, None, False, now + timedelta(seconds=5)), Hit(b.pk, 1, False, now)])

    assert _counted() == {
        (a.pk, "open", None, False): 4,
        (a.pk, "open", None, True): 1,
        (b.pk, "click", 0, False): 2,
        (b.pk, "click", 1, False): 2,
        (fresh.pk, "click", 0, True): 1,
        (fresh.pk, "open", None, True): 1,
    }
    row = Engagement.objects.get(delivery=a, kind="open", machine=False)
    assert (row.first_at, row.last_at) == (now - timedelta(seconds=3), now + timedelta(seconds=5))


@pytest.mark.both_databases
def test_hits_written_out_of_order_keep_the_first_and_the_last_time(deliveries):
    a, _b, _fresh = deliveries
    now = timezone.now()

    hits_record([Hit(a.pk, None, False, now)])  # one process's hit, written first
    hits_record([Hit(a.pk, None, False, now - timedelta(seconds=30))])  # another's, earlier, written after

    row = Engagement.objects.get(delivery=a, kind="open")
    assert (row.count, row.first_at, row.last_at) == (2, now - timedelta(seconds=30), now)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_batch_waits_briefly_for_a_message_another_writer_holds_and_nothing_is_written_twice(deliveries):
    """A click batch locks its messages' rows: one held by another transaction (a writer updating several messages
    in its own order) makes the batch give up within LOCK_WAIT, before a deadlock could fail the other writer; the
    opens written meanwhile are not written again when the clicks are, once the row is free."""
    a, b, _fresh = deliveries
    pending = _Pending()
    pending.add(Hit(a.pk, None, False, timezone.now()))
    pending.add(Hit(b.pk, 0, False, timezone.now()))
    with psycopg.connect(**connection_params(autocommit=False)) as other:
        other.execute(f"SELECT id FROM {Delivery._meta.db_table} WHERE id = %s FOR UPDATE", [b.pk])  # noqa: S608
        started = time.monotonic()
        assert pending.flush()
        waited = time.monotonic() - started
        assert _counted() == {(a.pk, "open", None, False): 1}  # the clicks are kept
        other.rollback()

    assert pending.flush()

    assert waited < 1.0  # PostgreSQL's deadlock check comes after 1 s of waiting
    assert _counted() == {(a.pk, "open", None, False): 1, (b.pk, "click", 0, False): 1}
    assert not pending.flush()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_click_written_in_its_request_waits_for_a_message_another_writer_holds(deliveries, client):
    """With CAMPAIGNS_TRACKING_FLUSH_MS at 0, the request's own write waits for the row (the batch's short lock
    wait is the writer thread's alone): the click lands and counts once the other writer commits."""
    _a, b, _fresh = deliveries
    path = click_path(b.pk, 0)
    with psycopg.connect(**connection_params(autocommit=False)) as other:
        other.execute(f"SELECT id FROM {Delivery._meta.db_table} WHERE id = %s FOR UPDATE", [b.pk])  # noqa: S608
        release = threading.Timer(0.6, other.rollback)
        release.start()
        response = client.get(path, **PERSON)
        release.join()

    assert response.status_code == 302
    assert _counted() == {(b.pk, "click", 0, False): 1}


@pytest.mark.django_db(transaction=True)
def test_a_web_process_answers_without_the_database_and_writes_its_hits_within_the_interval(
    deliveries, client, settings, django_assert_num_queries
):
    settings.CAMPAIGNS_TRACKING_FLUSH_MS = 100
    a, b, _fresh = deliveries
    assert client.get(click_path(b.pk, 1), **PERSON).status_code == 302  # reads the version once a process

    paths = [open_path(a.pk), click_path(b.pk, 0), open_path(a.pk + 10_000)]

    with django_assert_num_queries(0):
        opened, clicked, gone = [client.get(path, **PERSON) for path in paths]
    for _ in range(20):
        client.get(open_path(a.pk), **PERSON)

    assert (opened.status_code, opened["Content-Type"]) == (200, "image/gif")
    assert (clicked.status_code, clicked["Location"].split("&utm_")[0]) == (302, SALE)
    assert gone.status_code == 200  # a pixel answers; nothing is counted for a message that does not exist
    expected = {(a.pk, "open", None, False): 21, (b.pk, "click", 0, False): 1, (b.pk, "click", 1, False): 1}
    wait_for(lambda: _counted() == expected, 10, "the hits written by the process's thread")


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_hits_the_database_could_not_take_are_kept_for_the_next_time(deliveries):
    a, _b, _fresh = deliveries
    pending = _Pending()
    pending.add(Hit(a.pk, None, False, timezone.now()))
    pending.add(Hit(a.pk, None, False, timezone.now()))
    port = connection.settings_dict["PORT"]
    connection.close()
    try:
        connection.settings_dict["PORT"] = str(free_port())  # nothing listens there: the server is down
        assert pending.flush()
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port
    assert not Engagement.objects.exists()

    pending.add(Hit(a.pk, None, False, timezone.now()))
    assert pending.flush()

    assert _counted() == {(a.pk, "open", None, False): 3}
    assert not pending.flush()  # nothing left


@pytest.mark.django_db(transaction=True)
def test_gunicorn_workers_write_the_hits_they_keep_as_they_stop(deliveries, tmp_path):
    """The Procfile's web process (two workers), writing every minute: nothing is written while it serves, and
    everything it answered once it has stopped."""
    a, b, _fresh = deliveries
    port = free_port()
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "TEST_CAMPAIGNS_TRACKING_FLUSH_MS": "60000",
    }
    web = subprocess.Popen(  # noqa: S603 - our own command
        web_command(port), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: _status(port, "/login/") == 200, 60, "gunicorn answering")
        answers = [_status(port, open_path(a.pk)) for _ in range(30)]
        answers += [_status(port, click_path(b.pk, 0)) for _ in range(12)]
        time.sleep(0.5)
        written_while_serving = Engagement.objects.exists()
    finally:
        web.terminate()
        errors = web.communicate(timeout=60)[1]

    assert answers == [200] * 30 + [302] * 12, errors
    assert not written_while_serving
    assert _counted() == {(a.pk, "open", None, False): 30, (b.pk, "click", 0, False): 12}, errors


def _status(port: int, path: str) -> int:
    request = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        request.request("GET", path, headers={"User-Agent": BROWSER})
        return request.getresponse().status
    except OSError:
        return 0
    finally:
        request.close()


def test_an_old_click_token_and_a_new_one_name_the_same_link(deliveries):
    a, _b, _fresh = deliveries
    old = signing.Signer(salt="campaigns.tracking").sign(f"c.{a.pk}.0")
    [new] = tracking.link_urls(a.pk, a.version_id, 1)

    assert tracking.read_click_token(old) == tracking.TrackingToken(a.pk, 0)
    assert tracking.read_click_token(_path(new).split("/")[-2]) == tracking.TrackingToken(a.pk, 0, a.version_id)
