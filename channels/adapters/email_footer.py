"""The footer an email configuration may append to marketing mail: the unsubscribe link recipients can see, which
Gmail and Yahoo ask of bulk senders in the body as well as the one-click List-Unsubscribe header.

A footer is Liquid whose one variable is `unsubscribe_url` (the recipient's link, channels.unsubscribe), in two
variants: `footer_html` (autoescaped) for the HTML part, `footer_text` for the text part. Each must show the link
(`shows_unsubscribe_url`) and render (with a sample link, in the environment and limits the send path uses), both
checked when the configuration is saved (channels.schemas); campaigns.unsubscribe puts the link question to a marketing
campaign's content. A footer stored before these checks that does not parse or render raises FooterError, naming the
setting, where it is applied.
"""

import re

from liquid import Environment, RenderContext
from liquid.builtin.expressions.path import Path
from liquid.builtin.output import OutputNode
from liquid.exceptions import LiquidError, TemplateNotFoundError

UNSUBSCRIBE_VARIABLE = "unsubscribe_url"
# What a footer is rendered with when it is checked: a link longer than most real ones (channels.unsubscribe's are
# the site's address, /u/, ids and a 43-character signature), so limits on the output hold for them too.
SAMPLE_UNSUBSCRIBE_URL = (
    "https://mail-preferences.unsubscribe.example.com/u/1234567890.e.1234567890123"
    ":sample-signature-0123456789abcdef0123456789abcdef/"
)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


class _FooterEnvironment(Environment):
    # A footer is a few lines: limits keep a mistaken one from stalling a worker.
    context_depth_limit = 10
    loop_iteration_limit = 1_000
    local_namespace_limit = 10_000
    output_stream_limit = 100_000


_HTML = _FooterEnvironment(autoescape=True)
_PLAIN = _FooterEnvironment(autoescape=False)


def shows_unsubscribe_url(source: str) -> bool:
    """Whether the Liquid `source` outputs `unsubscribe_url` itself: `{{ unsubscribe_url }}`, `{{unsubscribe_url}}`,
    with filters (`{{ unsubscribe_url | escape }}`), with whitespace control, or `{% echo unsubscribe_url %}`; not
    inside a comment or a raw block. False for source that does not parse."""
    try:
        template = _PLAIN.from_string(source)
    except LiquidError:
        return False
    static_context = RenderContext(template)
    nodes = list(template.nodes)
    while nodes:
        node = nodes.pop()
        if isinstance(node, OutputNode):
            left = getattr(node.expression, "left", None)
            if isinstance(left, Path) and list(left.path) == [UNSUBSCRIBE_VARIABLE]:
                return True
        nodes.extend(node.children(static_context, include_partials=False))
    return False


class FooterError(ValueError):
    """A footer that does not parse or render; `field` names its setting (footer_html, footer_text), `reason` says
    why in Liquid's words."""

    def __init__(self, field: str, *, parses: bool, reason: str):
        self.field = field
        self.reason = reason
        self.problem = _problem(parses=parses, reason=reason)
        super().__init__(f"The channel configuration's {field} {self.problem}: edit the configuration's footer.")


def footer_problem(source: str) -> str | None:
    """Why `source` cannot be a footer (it does not parse, does not show the link, or does not render: a filter
    that fails, an include of a template there is none of, a loop past the limits), or None."""
    try:
        templates = [environment.from_string(source) for environment in (_PLAIN, _HTML)]
    except LiquidError as exc:
        return _problem(parses=False, reason=_first_line(exc))
    if not shows_unsubscribe_url(source):
        return "must contain {{ unsubscribe_url }}, the recipient's unsubscribe link"
    for template in templates:
        try:
            template.render(unsubscribe_url=SAMPLE_UNSUBSCRIBE_URL)
        except Exception as exc:  # noqa: BLE001 - whatever a footer raises, it would raise for every message
            return _problem(parses=True, reason=_render_reason(exc))
    return None


def _problem(*, parses: bool, reason: str) -> str:
    return f"does not render: {reason}" if parses else f"is not valid Liquid: {reason}"


def _render_reason(exc: Exception) -> str:
    if isinstance(exc, TemplateNotFoundError):
        return f"it includes the template “{_first_line(exc)[:100]}”, and a footer can include no other template"
    if isinstance(exc, LiquidError):
        return _first_line(exc)
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: Exception) -> str:
    lines = str(exc).splitlines()
    return lines[0][:300] if lines else type(exc).__name__


class Footer:
    """A configuration's footers, compiled once when its adapter opens. A footer that does not parse, or does not
    render when applied, raises FooterError naming its setting."""

    def __init__(self, *, html: str, text: str):
        self._html = self._compiled("footer_html", _HTML, html)
        self._text = self._compiled("footer_text", _PLAIN, text)

    @staticmethod
    def _compiled(field: str, environment: Environment, source: str):
        if not source:
            return None
        try:
            return environment.from_string(source)
        except LiquidError as exc:
            raise FooterError(field, parses=False, reason=_first_line(exc)) from exc

    def __bool__(self) -> bool:
        return bool(self._html or self._text)

    def applied(self, *, html: str, text: str, unsubscribe_url: str) -> tuple[str, str]:
        """The body parts with the footers appended: the HTML one before `</body>` when there is one (else at the
        end), the text one after a blank line. An empty part stays empty."""
        if html and self._html:
            footer = self._rendered("footer_html", self._html, unsubscribe_url)
            ends = list(_BODY_END.finditer(html))
            at = ends[-1].start() if ends else len(html)
            html = f"{html[:at]}{footer}\n{html[at:]}" if ends else f"{html}\n{footer}"
        if text and self._text:
            text = f"{text.rstrip()}\n\n{self._rendered('footer_text', self._text, unsubscribe_url)}\n"
        return html, text

    @staticmethod
    def _rendered(field: str, template, unsubscribe_url: str) -> str:
        try:
            return template.render(unsubscribe_url=unsubscribe_url)
        except Exception as exc:  # noqa: BLE001 - named as the footer's, whatever it is
            raise FooterError(field, parses=True, reason=_render_reason(exc)) from exc
