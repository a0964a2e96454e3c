"""Rendering marketer-authored content with Liquid: HTML autoescaped, resources bounded.

Content is untrusted. A template error fails one delivery with a reason, never the run.
"""

from dataclasses import dataclass
from functools import lru_cache

from liquid import Environment
from liquid.exceptions import LiquidError

from config import untrusted


class _BoundedEnvironment(Environment):
    # Limits keep one hostile template from stalling a worker or exhausting its memory.
    context_depth_limit = 20
    loop_iteration_limit = 10_000
    local_namespace_limit = 100_000
    output_stream_limit = 1_000_000


_HTML = _BoundedEnvironment(autoescape=True)
_PLAIN = _BoundedEnvironment(autoescape=False)


class ContentError(ValueError):
    """Content that does not parse or render; `field` names the part (subject, html_body, text_body)."""

    def __init__(self, field: str, message: str):
        # Liquid's message carries a source excerpt after its first line; the first line says it all.
        message = message.splitlines()[0] if message else message
        message = untrusted.storable(message, 400)  # stored as the delivery's detail
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class RenderedContent:
    subject: str
    html: str
    text: str


class CompiledContent:
    def __init__(self, subject: str, html_body: str, text_body: str):
        self._parts = {}
        for field, source, environment in (
            ("subject", subject, _PLAIN),
            ("html_body", html_body, _HTML),
            ("text_body", text_body, _PLAIN),
        ):
            try:
                self._parts[field] = environment.from_string(source)
            except LiquidError as exc:
                raise ContentError(field, str(exc)) from None

    def render(self, context: dict) -> RenderedContent:
        rendered = {}
        for field, template in self._parts.items():
            try:
                rendered[field] = template.render(**context)
            except LiquidError as exc:
                raise ContentError(field, str(exc)) from None
            except Exception as exc:  # noqa: BLE001 - a filter fed this recipient's data (`| date` of a huge number)
                raise ContentError(
                    field, f"cannot render this recipient's data ({type(exc).__name__}: {exc})"
                ) from None
            if (problem := untrusted.text_problem(rendered[field])) is not None:
                # Text stored before entries were checked: no relay or page can encode it.
                raise ContentError(field, f"the rendered text {problem}")
        return RenderedContent(rendered["subject"].strip(), rendered["html_body"], rendered["text_body"])


@lru_cache(maxsize=256)
def _compiled(key: tuple) -> CompiledContent:
    return CompiledContent(*key[1:])


def compiled_content(version) -> CompiledContent:
    """The compiled templates of a campaign version, cached for the life of the worker process."""
    return _compiled((version.pk, version.subject, version.html_body, version.text_body))


def check_content(*, subject: str, html_body: str, text_body: str) -> None:
    """Raise ContentError naming the part that does not parse."""
    CompiledContent(subject, html_body, text_body)


def personalization_fields(version) -> list[str]:
    """The variable paths a version's subject and bodies read (`profile.first_name`), sorted."""
    paths = set()
    for source in (version.subject, version.html_body, version.text_body):
        try:
            paths.update(_PLAIN.from_string(source).global_variable_paths())
        except LiquidError:
            continue  # content is checked when saved; a part that no longer parses reads nothing
    return sorted(paths)
