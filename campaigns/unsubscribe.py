"""The visible unsubscribe rule: a marketing email shows its recipient an unsubscribe link in the body, as Gmail and
Yahoo require of bulk senders besides the one-click List-Unsubscribe header.

Either the content shows `{{ unsubscribe_url }}` or the email configuration appends a footer that does
(channels.adapters.email_footer). campaigns.services.approval checks it when a version is submitted for review,
campaigns.services.lifecycle when a version goes live.
"""

from audiences.models import Channel
from campaigns.models import Campaign, CampaignVersion
from campaigns.personalization import RenderedContent
from channels.adapters.email_footer import Footer, shows_unsubscribe_url

# (content field, footer setting, the part's name, an example of the link in it, the footer's name)
_PARTS = (
    ("html_body", "footer_html", "HTML body", '<a href="{{ unsubscribe_url }}">Unsubscribe</a>', "an HTML footer"),
    ("text_body", "footer_text", "text body", "Unsubscribe: {{ unsubscribe_url }}", "a text footer"),
)


def _footed(campaign: Campaign, version: CampaignVersion):
    """The settings of the version's configuration when it sends marketing email, else None."""
    configuration = version.channel_configuration
    if campaign.category != Campaign.Category.MARKETING or configuration.channel != Channel.EMAIL:
        return None
    return configuration.get_settings()


def visible_unsubscribe_errors(*, campaign: Campaign, version: CampaignVersion) -> dict[str, str]:
    """The body parts of `version` that would reach a recipient of marketing email without an unsubscribe link they
    can see, each with both ways to fix it; {} when none would, and for transactional campaigns and other channels.

    A part counts when it has content (the HTML body when neither has); it shows the link when its content outputs
    `{{ unsubscribe_url }}` (any spelling, filters allowed) or the configuration has a footer for that part."""
    settings = _footed(campaign, version)
    if settings is None:
        return {}
    parts = [part for part in _PARTS if getattr(version, part[0]).strip()] or _PARTS[:1]
    errors = {}
    name = version.channel_configuration.name
    for field, footer, label, example, footer_name in parts:
        if getattr(settings, footer) or shows_unsubscribe_url(getattr(version, field)):
            continue
        errors[field] = (
            f"Marketing email must show an unsubscribe link: put {{{{ unsubscribe_url }}}} in the {label} (for "
            f"example {example}), or have an administrator give the channel configuration “{name}” "
            f"{footer_name} ({footer}) that shows it."
        )
    return errors


def with_footer(*, version: CampaignVersion, rendered: RenderedContent, unsubscribe_url: str) -> RenderedContent:
    """`rendered` as the email adapter delivers it: with the configuration's footers appended when the version is
    marketing email (the content preview shows what recipients will see)."""
    settings = _footed(version.campaign, version)
    if settings is None or not (footer := Footer(html=settings.footer_html, text=settings.footer_text)):
        return rendered
    html, text = footer.applied(html=rendered.html, text=rendered.text, unsubscribe_url=unsubscribe_url)
    return RenderedContent(rendered.subject, html, text)
