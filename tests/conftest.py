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
