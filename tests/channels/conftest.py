"""Fixtures for the channel adapters: a provider played by a local HTTP server, configurations of each channel."""

import pytest

from tests.channels.http_servers import ProviderServer


@pytest.fixture
def provider():
    server = ProviderServer().start()
    yield server
    server.stop()


def make_configuration(channel: str, *, name: str = "", **values):
    """A saved configuration of `channel` with validated settings (secrets encrypted as in production)."""
    from channels.models import ChannelConfiguration
    from channels.schemas import SETTINGS_MODELS

    configuration = ChannelConfiguration(name=name or f"Test {channel}", channel=channel)
    configuration.set_settings(SETTINGS_MODELS[channel](**values))
    configuration.save()
    return configuration


@pytest.fixture
def open_adapter(db):
    """Open an adapter for a new configuration; every adapter opened is closed after the test."""
    from django.utils.module_loading import import_string

    from channels.adapters.registry import ADAPTERS

    opened = []

    def open_(channel: str, **values):
        adapter = import_string(ADAPTERS[channel])(make_configuration(channel, **values))
        opened.append(adapter)
        return adapter

    yield open_
    for adapter in opened:
        adapter.close()
