"""The content preview: a version rendered as one recipient would get it, with a chosen profile (or a sample one)
and, for an API-triggered campaign, the context its contract's examples make, as a trigger call would carry it.

Rendering is the send path's (campaigns.personalization): the same Liquid environments, limits and errors.
"""

from dataclasses import dataclass, field

from liquid.exceptions import LiquidError

from audiences.models import Profile
from campaigns import contracts, unsubscribe
from campaigns.models import Campaign, CampaignVersion
from campaigns.personalization import CompiledContent, ContentError, RenderedContent, personalization_fields

# Who a preview is for when no profile is chosen: no attributes, so `profile.*` variables other than these render
# empty, as they would for a recipient without them.
SAMPLE_PROFILE = {"id": None, "email": "recipient@example.com", "phone": ""}
# Never a working link: a reviewer clicking it unsubscribes nobody.
UNSUBSCRIBE_PLACEHOLDER = "#unsubscribe-link"
# A footer the configuration appends to marketing email (campaigns.unsubscribe.with_footer) is shown as a part too.
PART_LABELS = {
    "subject": "Subject",
    "html_body": "HTML body",
    "text_body": "Text body",
    "footer_html": "HTML footer",
    "footer_text": "Text footer",
}


@dataclass(frozen=True)
class Preview:
    profile: Profile | None
    context: dict
    rendered: RenderedContent | None = None
    # The part that does not render (subject, html_body, text_body, or the configuration's footer_html or
    # footer_text) and why.
    error: ContentError | None = None
    # Paths the content reads under `context.` whose field the contract does not declare.
    undeclared: list[str] = field(default_factory=list)

    @property
    def error_part(self) -> str:
        return PART_LABELS.get(self.error.field, self.error.field) if self.error else ""

    @property
    def error_line(self) -> int | None:
        """The line of the part where rendering failed (1 for the first), when Liquid says."""
        return error_position(self.error)[0] if self.error else None

    @property
    def error_source(self) -> str:
        """That line as written, to show next to the error."""
        return error_position(self.error)[1] if self.error else ""

    @property
    def error_text(self) -> str:
        """The error in words: "HTML body does not render: unknown filter 'x', at line 3"."""
        if not self.error:
            return ""
        at = f", at line {self.error_line}" if self.error_line else ""
        return f"{self.error_part} does not render: {self.error.message}{at}"


def error_position(error: ContentError) -> tuple[int | None, str]:
    """The line number and text where `error` arose in its part, or (None, "") when Liquid did not say (an
    unclosed tag found at the end of the part, data a filter could not take). campaigns.personalization raises
    ContentError while handling Liquid's error, which Python keeps as its `__context__`; a footer's error is the
    cause of the FooterError campaigns.unsubscribe raises it from."""
    cause = error.__context__
    while cause is not None and not isinstance(cause, LiquidError):
        cause = cause.__cause__
    if not isinstance(cause, LiquidError):
        return None, ""
    try:
        position = cause.context()
    except ValueError:  # a position past the end of the source
        return None, ""
    if position is None:
        return None, ""
    line, _column, _previous, current, _next = position
    return line, current.strip()[:200]


def render_context(*, campaign: Campaign, profile: Profile | None, context: dict) -> dict:
    """What the templates see, as campaigns.engine.sending gives it to a delivery."""
    return {
        "profile": profile.personalization() if profile else dict(SAMPLE_PROFILE),
        "campaign": {"name": campaign.name},
        "context": context,
        "unsubscribe_url": UNSUBSCRIBE_PLACEHOLDER,
    }


def version_preview(*, version: CampaignVersion, profile: Profile | None = None) -> Preview:
    """`version` rendered for `profile` (None: the sample profile) with the contract's example context."""
    campaign = version.campaign
    triggered = campaign.kind == Campaign.Kind.API_TRIGGERED
    contract = contracts.contract_of(campaign) if triggered else []
    context = contracts.example_context(contract)
    undeclared = undeclared_context_fields(version, contract) if triggered else []
    try:
        rendered = CompiledContent(version.subject, version.html_body, version.text_body).render(
            render_context(campaign=campaign, profile=profile, context=context)
        )
        rendered = unsubscribe.with_footer(version=version, rendered=rendered, unsubscribe_url=UNSUBSCRIBE_PLACEHOLDER)
    except ContentError as error:
        return Preview(profile, context, error=error, undeclared=undeclared)
    return Preview(profile, context, rendered=rendered, undeclared=undeclared)


def undeclared_context_fields(version: CampaignVersion, contract: list[contracts.ContextField]) -> list[str]:
    """The `context.*` paths the content reads (`context.order.id`) whose field (`order`) the contract does not
    declare. Reading the whole `context` names no field."""
    declared = {entry.name for entry in contract}
    found = []
    for path in personalization_fields(version):
        if not path.startswith("context."):
            continue
        name = path.removeprefix("context.").split(".", 1)[0].split("[", 1)[0]
        if name not in declared:
            found.append(path)
    return found
