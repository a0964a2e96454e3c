"""The visible unsubscribe rule: a marketing email shows its recipient an unsubscribe link in the body, as Gmail and
Yahoo require of bulk senders besides the one-click List-Unsubscribe header.

Either the content shows `{{ unsubscribe_url }}` or the email configuration appends a footer that does
(channels.adapters.email_footer). campaigns.services.approval checks it when a version is submitted for review,
campaigns.services.lifecycle when a version goes live.
"""

from audiences.models import Channel
from campaigns.models import Campaign, CampaignVersion
from campaigns.personalization import ContentError, RenderedContent
from channels.adapters.email_footer import Footer, FooterError, shows_unsubscribe_url

# (content field, footer setting, the part's name, an example of the link in it, the footer's name)
_PARTS = (
    ("html_body", "footer_html", "HTML body", '<a href="{{ unsubscribe_url }}">Unsubscribe</a>', "an HTML footer"),
    ("text_body", "footer_text", "text body", "Unsubscribe: {{ unsubscribe_url }}", "a text footer"),
)


def _footers(campaign: Campaign, version: CampaignVersion) -> dict[str, str] | None:
    """The footers (footer_html, footer_text) of the version's configuration when it sends marketing email, else
    None. Read from the plain settings: no secret is decrypted and nothing validated, so a page showing the rule
    does not depend on the encryption keys or on settings stored before a check existed."""
    configuration = version.channel_configuration
    if campaign.category != Campaign.Category.MARKETING or configuration.channel != Channel.EMAIL:
        return None
    return {name: _text(configuration.settings.get(name)) for name in ("footer_html", "footer_text")}


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def visible_unsubscribe_errors(*, campaign: Campaign, version: CampaignVersion) -> dict[str, str]:
    """The body parts of `version` that would reach a recipient of marketing email without an unsubscribe link they
    can see, each with both ways to fix it; {} when none would, and for transactional campaigns and other channels.

    A part counts when it has content (the HTML body when neither has); it shows the link when its content outputs
    `{{ unsubscribe_url }}` (any spelling, filters allowed) or the configuration has a footer for that part."""
    footers = _footers(campaign, version)
    if footers is None:
        return {}
    parts = [part for part in _PARTS if getattr(version, part[0]).strip()] or _PARTS[:1]
    errors = {}
    name = version.channel_configuration.name
    for field, footer, label, example, footer_name in parts:
        if footers[footer] or shows_unsubscribe_url(getattr(version, field)):
            continue
        errors[field] = (
            f"Marketing email must show an unsubscribe link: put {{{{ unsubscribe_url }}}} in the {label} (for "
            f"example {example}), or have an administrator give the channel configuration “{name}” "
            f"{footer_name} ({footer}) that shows it."
        )
    return errors


def with_footer(*, version: CampaignVersion, rendered: RenderedContent, unsubscribe_url: str) -> RenderedContent:
    """`rendered` as the email adapter delivers it: with the configuration's footers appended when the version is
    marketing email (the content preview shows what recipients will see). A footer that does not parse or render
    (one stored before footers were rendered when saved) raises ContentError naming its setting, as content that
    does not render does, so the preview shows it instead of failing."""
    footers = _footers(version.campaign, version)
    if footers is None:
        return rendered
    try:
        footer = Footer(html=footers["footer_html"], text=footers["footer_text"])
        if not footer:
            return rendered
        html, text = footer.applied(html=rendered.html, text=rendered.text, unsubscribe_url=unsubscribe_url)
    except FooterError as error:
        name = version.channel_configuration.name
        # The preview says "HTML footer does not render: <why>": the footer is the configuration's, not the content's.
        raise ContentError(
            error.field, f"{error.reason} (set in the channel configuration “{name}”: an administrator can fix it)"
        ) from error
    return RenderedContent(rendered.subject, html, text)
