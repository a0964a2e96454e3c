"""Hooks: how a lower app asks a question that only the apps above it can answer, without naming them.

The apps sit in layers (campaigns > channels > audiences > permissions) and a lower app never imports, names
or links to an upper one. Where it must know who uses one of its objects (the campaigns that send to an
audience) or show a part of a page that belongs to an upper app (a profile's messages), it declares a hook in
its own `hooks.py`, and the upper app fills it in its `AppConfig.ready()`. What comes back is described and
rendered by the app that owns it.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.utils.safestring import SafeString


@dataclass(frozen=True)
class Use:
    """Something that uses an object of a lower app, described by the app it belongs to."""

    name: str
    state: str  # in words, lower case: "active", "draft, in review"
    live: bool  # it uses the object now: the object may not be deleted or switched off
    finished: bool  # it will never use the object again
    html: SafeString  # a link to it with its state, rendered by its own app

    def __str__(self):
        return f"“{self.name}” ({self.state})"


class UsesHook:
    """The question "what uses these objects?". Each finder takes object ids and returns, per id, its uses."""

    def __init__(self, what: str):
        self.what = what
        self._finders: list[Callable[[list[int]], dict[int, list[Use]]]] = []

    def register(self, finder: Callable[[list[int]], dict[int, list[Use]]]) -> None:
        if finder not in self._finders:
            self._finders.append(finder)

    def by_id(self, ids: Iterable[int]) -> dict[int, list[Use]]:
        """The uses of each of these objects, live ones first and finished ones last (by name within each)."""
        ids = list(ids)
        uses: dict[int, list[Use]] = {}
        for finder in self._finders:
            for pk, found in finder(ids).items():
                uses.setdefault(pk, []).extend(found)
        for listed in uses.values():
            listed.sort(key=lambda use: (not use.live, use.finished))
        return uses

    def of(self, pk: int) -> list[Use]:
        return self.by_id([pk]).get(pk, [])


@dataclass(frozen=True)
class Section:
    """A part of a lower app's page served by an upper app, loaded into the page with htmx."""

    title: str
    url: str


class SectionsHook:
    """The parts an upper app adds to a lower app's page. Each provider takes the request and the page's
    object and returns a Section, or None where the viewer may not see it."""

    def __init__(self, page: str):
        self.page = page
        self._providers: list[Callable] = []

    def register(self, provider: Callable) -> None:
        if provider not in self._providers:
            self._providers.append(provider)

    def for_page(self, request, obj) -> list[Section]:
        return [section for provider in self._providers if (section := provider(request, obj)) is not None]


class ProviderHook:
    """A question with one answerer: the upper app that registered it."""

    def __init__(self, question: str):
        self.question = question
        self._provider = None

    def register(self, provider) -> None:
        self._provider = provider

    def get(self):
        if self._provider is None:
            raise LookupError(f"No app answers {self.question!r}: is the app that provides it installed?")
        return self._provider
