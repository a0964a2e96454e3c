"""Shared fixtures: personas (one user per built-in role and an outsider), Redis, and data builders."""

import fcntl
import os
import re
from pathlib import Path

import django_rq
import pytest
from django.contrib.auth.models import Group

from permissions.roles import Role

PASSWORD = "correct-horse-battery-staple"

PERSONAS = {
    "ada": Role.ADMINISTRATOR,
    "april": Role.APPROVER,
    "manny": Role.MANAGER,
    "vera": Role.VIEWER,
    "otto": None,  # an outsider: logged in, no campaign role
}


@pytest.fixture
def personas(db, django_user_model):
    users = {}
    for username, role in PERSONAS.items():
        user = django_user_model.objects.create_user(username, f"{username}@example.com", PASSWORD)
        if role:
            user.groups.add(Group.objects.get(name=role.value))
        users[username] = user
    return users


@pytest.fixture
def redis():
    """The tests' own Redis database, emptied before and after each test that uses queues."""
    connection = django_rq.get_connection("campaigns")
    connection.flushdb()
    yield connection
    connection.flushdb()


@pytest.fixture
def smtp_server():
    from tests.smtp_servers import RecordingSMTPServer

    server = RecordingSMTPServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_business_rules():
    """A process keeps the business rules a few seconds (campaigns.rules.business), a test's rolled-back caps too."""
    from campaigns.rules import business

    business.forget()
    yield
    business.forget()


@pytest.fixture(autouse=True)
def _close_adapters():
    """Adapters live for a worker's lifetime; a test's worker ends with the test."""
    yield
    from channels.adapters.registry import close_all

    close_all()


# Marketing email must show an unsubscribe link (campaigns.unsubscribe): the tests' relays append one, so content
# written for a test need not. `footer_html=""` and `footer_text=""` make a relay without.
TEST_FOOTERS = {
    "footer_html": '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
    "footer_text": "Unsubscribe: {{ unsubscribe_url }}",
}


def make_email_configuration(*, port: int, name: str = "Test relay", **overrides):
    from channels.models import ChannelConfiguration
    from channels.schemas import EmailSettings

    values = {
        "from_email": "news@example.com",
        "from_name": "Shop",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "connections": 2,
        **TEST_FOOTERS,
        **overrides,
    }
    configuration = ChannelConfiguration(name=name, channel="email")
    configuration.set_settings(EmailSettings(**values))
    configuration.save()
    return configuration


def run_burst_worker() -> None:
    """Run every queued job in this process, as the pool's worker class does, through JSON serialization."""
    import django_rq

    from config.queues import QUEUE_NAMES

    worker = django_rq.get_worker(*QUEUE_NAMES)
    worker.work(burst=True, with_scheduler=False)


# bin/mutation ----------------------------------------------------------------------------------------------
# mutmut tests each mutant in a process forked from the one that ran the suite, so every such process starts
# with that one's settings: the same test database and Redis database. bin/mutation sets MUTATION_WORKERS;
# each mutant's process then takes a free worker slot (a lock held until it exits, however it exits) and
# uses that slot's own test database (kept between mutants, emptied at the start) and Redis database.


def _mutation_slot() -> int | None:
    """This process's worker slot under bin/mutation, or None outside a mutant's process."""
    workers = os.environ.get("MUTATION_WORKERS")
    if not workers or "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", ""):
        return None
    global _slot
    if _slot is None:
        slots = Path(os.environ["MUTATION_SLOTS_DIR"])
        slots.mkdir(parents=True, exist_ok=True)
        while _slot is None:
            for n in range(int(workers)):
                handle = open(slots / f"slot-{n}.lock", "w")  # noqa: SIM115 - held until the process exits
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    continue
                _slot_locks.append(handle)
                _slot = n
                break
    return _slot


_slot: int | None = None
_slot_locks: list = []


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    slot = _mutation_slot()
    if slot is None:
        return
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        database["TEST"]["NAME"] = str(Path(database["TEST"]["NAME"]).with_name(f"test-mutation-{slot}.sqlite3"))
    else:
        database.setdefault("TEST", {})["NAME"] = f"test_{database['NAME']}_mutation{slot}"
    redis_url = re.sub(r"(\?db=|/)\d+$", rf"\g<1>{2 + slot}", settings.REDIS_URL)
    settings.REDIS_URL = redis_url
    for queue in settings.RQ_QUEUES.values():
        queue["URL"] = redis_url


@pytest.fixture(scope="session")
def django_db_keepdb(request):
    """A mutant's process keeps its slot's test database for the next mutant (migrations take a second)."""
    return request.config.getvalue("reuse_db") or _mutation_slot() is not None


@pytest.fixture(scope="session", autouse=True)
def _mutation_slot_starts_empty(request, django_db_blocker):
    """A mutant's process killed by its time limit may have left rows and jobs behind: start from none."""
    if _mutation_slot() is None:
        return
    from django.core.management import call_command

    try:
        request.getfixturevalue("django_db_setup")
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)
        django_rq.get_connection("campaigns").flushdb()
    except BaseException:
        # A failing test would count the mutant as killed: exit with a code mutmut calls "suspicious" instead.
        import traceback

        (Path(os.environ["MUTATION_SLOTS_DIR"]) / "setup-error.txt").write_text(traceback.format_exc())
        os._exit(75)
