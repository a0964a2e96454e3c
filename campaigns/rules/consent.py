"""The first delivery rule: who may receive a message at all (an address, not suppressed, consent for marketing)."""

from audiences.models import Consent, unknown_consent_allows_marketing
from campaigns.models import Campaign, Delivery
from campaigns.rules.base import Batch, Candidate, Rule
from channels.models import Suppression, normalize_address
from config import rawsql


def consent_states(profile_ids, channel: str) -> dict[int, str]:
    rows = Consent.objects.filter(profile_id__in=profile_ids, channel=channel).values_list("profile_id", "state")
    return dict(rows)


def consent_inputs(category: str, profile_ids, channel: str) -> tuple[dict[int, str], bool]:
    """What `exclusion_reason` needs about consent for these recipients: their states, and whether unknown consent
    allows marketing on the channel. Transactional messages skip consent: nothing is read for them."""
    if category != Campaign.Category.MARKETING:
        return {}, True
    return consent_states(profile_ids, channel), unknown_consent_allows_marketing(channel)


def suppressed_addresses(addresses, channel: str) -> set[str]:
    """Which of these addresses are suppressed on the channel. Read for every trigger call and every slice sent, so
    through a cursor (config.rawsql); chunked below SQLite's limit on parameters."""
    wanted = sorted({normalize_address(channel, address) for address in addresses if address})
    found = set()
    with rawsql.cursor() as cursor:
        for start in range(0, len(wanted), _CHUNK):
            among, listed = rawsql.one_of("address", wanted[start : start + _CHUNK])
            cursor.execute(
                f"SELECT address FROM {Suppression._meta.db_table} WHERE channel = %s AND {among}",  # noqa: S608
                [channel, *listed],
            )
            found.update(address for (address,) in cursor.fetchall())
    return found


_CHUNK = 500


def exclusion_reason(
    *, category: str, channel: str, address: str, consent: str | None, suppressed: set[str], unknown_allows: bool
) -> str:
    """The reason a recipient must not get this message, or "" when they may.

    Marketing honours opt-outs and, per channel, treats unknown consent as a yes or a no (`unknown_allows`,
    from audiences.models.unknown_consent_allows_marketing, read once per batch); transactional messages
    skip only suppressed addresses.
    """
    if not address:
        return Delivery.Reason.NO_ADDRESS
    if normalize_address(channel, address) in suppressed:
        return Delivery.Reason.SUPPRESSED
    if category == Campaign.Category.MARKETING:
        if consent == Consent.State.OPTED_OUT:
            return Delivery.Reason.NO_CONSENT
        if consent in (None, Consent.State.UNKNOWN) and not unknown_allows:
            return Delivery.Reason.NO_CONSENT
    return ""


class ConsentAndSuppression(Rule):
    """No address, a suppressed address, or (marketing only) no consent on the channel: excluded. Checked at planning
    and again before sending, since consent and suppression may change in between."""

    name = "Consent and suppression"

    def decide(self, batch: Batch, candidates: list[Candidate]) -> None:
        consents, unknown_allows = consent_inputs(
            batch.campaign.category, [c.profile_id for c in candidates if c.profile_id], batch.channel
        )
        suppressed = suppressed_addresses([c.address for c in candidates], batch.channel)
        for candidate in candidates:
            candidate.reason = exclusion_reason(
                category=batch.campaign.category,
                channel=batch.channel,
                address=candidate.address,
                consent=consents.get(candidate.profile_id),
                suppressed=suppressed,
                unknown_allows=unknown_allows,
            )
