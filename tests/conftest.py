"""Shared fixtures: personas (one user per built-in role and an outsider), Redis, and data builders."""

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
def _close_adapters():
    """Adapters live for a worker's lifetime; a test's worker ends with the test."""
    yield
    from channels.adapters.registry import close_all

    close_all()


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
