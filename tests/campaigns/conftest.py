"""Fixtures the send-path tests share: an audience of every profile, and the marketer who runs campaigns."""

import pytest


@pytest.fixture
def everyone(db):
    from audiences.models import Audience

    return Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)


@pytest.fixture
def marketer(personas):
    return personas["april"]
