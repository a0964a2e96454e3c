"""The footer an email configuration may append to marketing mail: the unsubscribe link recipients can see, which
Gmail and Yahoo ask of bulk senders in the body as well as the one-click List-Unsubscribe header.

A footer is Liquid whose one variable is `unsubscribe_url` (the recipient's link, channels.unsubscribe), in two
variants: `footer_html` (autoescaped) for the HTML part, `footer_text` for the text part. Each must show the link
(`shows_unsubscribe_url`), checked when the configuration is saved (channels.schemas); campaigns.unsubscribe puts
the same question to a marketing campaign's content.
"""

import re

from liquid import Environment, RenderContext
from liquid.builtin.expressions.path import Path
from liquid.builtin.output import OutputNode
from liquid.exceptions import LiquidError

UNSUBSCRIBE_VARIABLE = "unsubscribe_url"
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


def footer_problem(source: str) -> str | None:
    """Why `source` cannot be a footer (it does not parse, or does not show the link), or None."""
    try:
        _PLAIN.from_string(source)
    except LiquidError as exc:
        return f"is not valid Liquid: {str(exc).splitlines()[0]}"
    if not shows_unsubscribe_url(source):
        return "must contain {{ unsubscribe_url }}, the recipient's unsubscribe link"
    return None


class Footer:
    """A configuration's footers, compiled once when its adapter opens."""

    def __init__(self, *, html: str, text: str):
        self._html = _HTML.from_string(html) if html else None
        self._text = _PLAIN.from_string(text) if text else None

    def __bool__(self) -> bool:
        return bool(self._html or self._text)

    def applied(self, *, html: str, text: str, unsubscribe_url: str) -> tuple[str, str]:
        """The body parts with the footers appended: the HTML one before `</body>` when there is one (else at the
        end), the text one after a blank line. An empty part stays empty."""
        if html and self._html:
            footer = self._html.render(unsubscribe_url=unsubscribe_url)
            ends = list(_BODY_END.finditer(html))
            at = ends[-1].start() if ends else len(html)
            html = f"{html[:at]}{footer}\n{html[at:]}" if ends else f"{html}\n{footer}"
        if text and self._text:
            text = f"{text.rstrip()}\n\n{self._text.render(unsubscribe_url=unsubscribe_url)}\n"
        return html, text
