"""Fixtures the send-path tests share: an audience of every profile, and the marketer who runs campaigns."""

import pytest


@pytest.fixture
def everyone(db):
    from audiences.models import Audience

    return Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)


@pytest.fixture
def marketer(personas):
    return personas["april"]


@pytest.fixture
def email_adapter(monkeypatch):
    """`email_adapter(SomeAdapter)` puts a test adapter in place of the email adapter for one test (fault
    injection: an adapter with a bug, a worker killed mid-send). Its `slices` list starts empty."""
    from channels.adapters import registry

    def install(adapter_class):
        monkeypatch.setitem(registry.ADAPTERS, "email", f"{adapter_class.__module__}.{adapter_class.__qualname__}")
        monkeypatch.setattr(adapter_class, "slices", [])
        registry.close_all()  # no adapter opened by an earlier test is reused
        return adapter_class

    yield install
    registry.close_all()


@pytest.fixture(autouse=True)
def _forget_tracked_links():
    """The click redirect keeps each version's links by id for the life of the process (a sent version never
    changes); on SQLite a test's rolled-back ids come back in the next test, with other content."""
    from campaigns.views import tracking

    tracking._version_read.cache_clear()
    tracking._settings.clear()
