"""The trigger API's writes: a call becomes a TriggerRequest and its Delivery rows in one transaction, and the send
job is enqueued when that commits. campaigns.api parses and authorizes; everything a call is refused for after
that is a TriggerRefused naming the problem.

Idempotency: a TriggerRequest is unique on (campaign, requestId) and keeps a hash of the body and the answer
given. The same id with the same body gets the first answer again and sends nothing; with another body it is
refused (409). Two calls racing with one id meet at the unique constraint: one execution, the other replays it.
"""

import hashlib
import json
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone

from audiences.models import Channel, Identity, IdentityNamespace, Profile
from audiences.schemas import ProfileSchema, normalize_email, normalize_identity, normalize_phone
from audiences.services.profiles import UpsertOutcome, profiles_upsert
from campaigns import contracts, rules
from campaigns.engine.dispatch import queue_for, wake_run_on_commit
from campaigns.models import Campaign, CampaignVersion, Delivery, Run, TriggerRequest
from channels.models import ChannelConfiguration
from config import rawsql
from config.queues import enqueue_on_commit

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 100
MAX_CONTEXT_BYTES = 200_000
# How far ahead an audience trigger may be scheduled.
MAX_SEND_AHEAD = timedelta(days=366)


class TriggerRefused(Exception):
    """A call refused after it was parsed: `status` and `problem` (a slug of docs/api.md's problem types), a
    `detail` sentence, and for a 422 each (JSON pointer, problem)."""

    def __init__(self, status: int, problem: str, detail: str, errors=(), headers=None):
        super().__init__(detail)
        self.status, self.problem, self.detail = status, problem, detail
        self.errors = list(errors)
        self.headers = headers or {}


@dataclass(frozen=True)
class RecipientIn:
    """One recipient as the call names them: by identity (namespace and value) or by profile id."""

    namespace: str | None = None
    value: str | None = None
    profile_id: int | None = None
    address: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict
    replayed: bool = False


def body_hash(body: dict) -> str:
    """The hash a replay is compared by: of the JSON body with its keys sorted, so key order does not matter, and
    without the requestId, which names the call whether it comes in the body or as the Idempotency-Key header."""
    body = {name: value for name, value in body.items() if name != "requestId"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def status_path(execution_id) -> str:
    return f"/api/v1/executions/{execution_id}"


# --- Checks shared by both kinds of call ---------------------------------------------------------------------


@dataclass(frozen=True)
class EarlierCall:
    """What is kept of a call with the same requestId: enough to replay its answer or refuse a different body."""

    body_hash: str
    status: int
    response: dict


# What a call reads of its campaign (the rest is deferred: read what the services use).
_CAMPAIGN_FIELDS = [
    "id", "name", "kind", "category", "status", "start_at", "end_at", "audience_id", "channel_configuration_id",
    "live_version_id", "context_contract", "create_profiles",
]  # fmt: skip


def call_target(campaign_id: int, request_id: str) -> tuple[Campaign | None, EarlierCall | None]:
    """The API-triggered campaign a call names (None when there is none) with its channel configuration and live
    version, and the earlier call with this requestId if any: one statement, on the hot path of every call."""
    sql = (
        f"SELECT {rawsql.columns(Campaign, _CAMPAIGN_FIELDS, 'c')}, cc.channel, v.number, "  # noqa: S608
        "t.body_hash, t.response_status, t.response "
        f"FROM {Campaign._meta.db_table} c "
        f"JOIN {ChannelConfiguration._meta.db_table} cc ON cc.id = c.channel_configuration_id "
        f"LEFT JOIN {CampaignVersion._meta.db_table} v ON v.id = c.live_version_id "
        f"LEFT JOIN {TriggerRequest._meta.db_table} t ON t.campaign_id = c.id AND t.request_id = %s "
        "WHERE c.id = %s AND c.kind = %s"
    )
    with rawsql.cursor() as cursor:
        cursor.execute(sql, [request_id, campaign_id, Campaign.Kind.API_TRIGGERED])
        row = cursor.fetchone()
    if row is None:
        return None, None
    size = len(_CAMPAIGN_FIELDS)
    campaign = rawsql.instance(Campaign, _CAMPAIGN_FIELDS, row[:size])
    channel, version_number, earlier_hash, earlier_status, earlier_response = row[size:]
    # What else a service reads of them is deferred, so it is loaded (by a query), never a default.
    campaign.channel_configuration = rawsql.instance(
        ChannelConfiguration, ["id", "channel"], [campaign.channel_configuration_id, channel]
    )
    if campaign.live_version_id is not None:
        campaign.live_version = rawsql.instance(
            CampaignVersion, ["id", "campaign_id", "number"], [campaign.live_version_id, campaign.pk, version_number]
        )
    if earlier_hash is None:
        return campaign, None
    stored = rawsql.instance(TriggerRequest, ["response"], [earlier_response])
    return campaign, EarlierCall(earlier_hash, earlier_status, stored.response)


def _replayed(campaign: Campaign, request_id: str, digest: str, earlier: EarlierCall | None) -> Answer | None:
    """The earlier call's answer again for the same body; 409 for another body; None for a new requestId."""
    if earlier is None:
        return None
    if earlier.body_hash != digest:
        raise TriggerRefused(
            409,
            "request-id-conflict",
            f"requestId {request_id!r} was already used for campaign {campaign.pk} with a different body; "
            "use a new requestId for a new call",
        )
    return Answer(earlier.status, earlier.response, replayed=True)


def _earlier_answer(campaign: Campaign, request_id: str, digest: str) -> Answer | None:
    """After losing a race at the unique (campaign, requestId): the winner's answer."""
    earlier = TriggerRequest.objects.filter(campaign=campaign, request_id=request_id).first()
    if earlier is None:
        return None
    return _replayed(
        campaign, request_id, digest, EarlierCall(earlier.body_hash, earlier.response_status, earlier.response)
    )


def _check_live(campaign: Campaign, now: datetime) -> None:
    if campaign.status != Campaign.Status.ACTIVE or campaign.live_version_id is None:
        state = campaign.get_status_display().lower()
        raise TriggerRefused(
            409, "campaign-not-live", f"campaign {campaign.pk} is {state}: only an active campaign accepts calls"
        )
    if campaign.start_at and now < campaign.start_at:
        raise TriggerRefused(
            409,
            "outside-campaign-dates",
            f"campaign {campaign.pk} accepts calls from {campaign.start_at.isoformat()}",
        )
    if campaign.end_at and now >= campaign.end_at:
        raise TriggerRefused(
            409,
            "outside-campaign-dates",
            f"campaign {campaign.pk} stopped accepting calls at {campaign.end_at.isoformat()}",
        )


def _check_context_size(contexts: list[dict]) -> None:
    size = sum(len(json.dumps(context, ensure_ascii=False, separators=(",", ":")).encode()) for context in contexts)
    if size > MAX_CONTEXT_BYTES:
        raise TriggerRefused(
            413,
            "context-too-large",
            f"the context of this call is {size:,} bytes as JSON; at most {MAX_CONTEXT_BYTES:,} bytes a call",
        )


def _contract_refusal(problems: list[tuple[str, str]]) -> TriggerRefused:
    listed = "; ".join(f"{pointer}: {problem}" for pointer, problem in problems[:5])
    return TriggerRefused(
        422, "context-contract-violated", f"the context breaks the campaign's context contract: {listed}", problems
    )


# --- Unitary calls -------------------------------------------------------------------------------------------


def trigger_unitary(
    *,
    campaign: Campaign,
    api_key_prefix: str,
    request_id: str,
    digest: str,
    context: dict,
    recipients: list[RecipientIn],
    earlier: EarlierCall | None,
    now: datetime | None = None,
) -> Answer:
    """Send the campaign to 1 to 100 named recipients, each with the shared context and their own on top.

    Each recipient is `accepted` (a pending delivery), `excluded` (a delivery written as excluded, with the
    reason: no consent, suppressed, no address), or `rejected` (no delivery: unknown and the campaign does not
    create profiles, or named twice).
    """
    now = now or timezone.now()
    if (replay := _replayed(campaign, request_id, digest, earlier)) is not None:
        return replay
    _check_live(campaign, now)
    _check_context_size([context, *(recipient.context for recipient in recipients)])
    contract = contracts.contract_of(campaign)
    problems = []
    for index, recipient in enumerate(recipients):
        merged = {**context, **recipient.context}
        for pointer, problem in contracts.violations(contract, merged):
            name = pointer.rpartition("/")[2]
            if name in recipient.context:
                pointer = f"/recipients/{index}/context/{name}"
            if (pointer, problem) not in problems:
                problems.append((pointer, problem))
    if problems:
        raise _contract_refusal(problems)

    try:
        with transaction.atomic():
            outcomes, profiles = _resolve(campaign, recipients)
            run = _unitary_run(campaign, now)
            request = TriggerRequest(
                campaign=campaign,
                kind=TriggerRequest.Kind.UNITARY,
                run=run,
                api_key_prefix=api_key_prefix,
                request_id=request_id,
                body_hash=digest,
                recipient_count=len(recipients),
                expires_at=now + timedelta(hours=settings.TRIGGER_REQUEST_RETENTION_HOURS),
            )
            deliveries = _deliveries(campaign, run, request, recipients, outcomes, profiles, now)
            accepted = sum(1 for o in outcomes if o["status"] == "accepted")
            request.accepted_count = accepted
            request.context = {
                "shared": context,
                "recipients": {
                    str(outcome["profileId"]): recipients[outcome["index"]].context
                    for outcome in outcomes
                    if outcome["status"] != "rejected" and recipients[outcome["index"]].context
                },
            }
            if len(profiles) == 1:
                request.profile_id = next(iter(profiles))
            request.response = {
                **_answer_head(request),
                "counts": _outcome_counts(outcomes),
                "recipients": outcomes,
            }
            # The unique (campaign, requestId) decides between calls racing with one id: the loser's transaction
            # (its profiles created, its deliveries) rolls back whole, and it answers with the winner's answer.
            rawsql.insert(TriggerRequest, [request])
            rawsql.insert(Delivery, deliveries)
            if accepted:
                wake_run_on_commit(run)
    except IntegrityError:
        if (earlier := _earlier_answer(campaign, request_id, digest)) is None:
            raise
        return earlier
    log.info("campaign %s: trigger %s accepted %s of %s", campaign.pk, request_id, accepted, len(recipients))
    return Answer(202, request.response)


def _answer_head(request: TriggerRequest) -> dict:
    """What the 202 of either kind of call starts with: the call's ids and where to read its status."""
    return {
        "executionId": str(request.execution_id),
        "requestId": request.request_id,
        "campaignId": request.campaign_id,
        "kind": request.kind,
        "statusUrl": status_path(request.execution_id),
    }


def _outcome_counts(outcomes: list[dict]) -> dict:
    counts = {"accepted": 0, "excluded": 0, "rejected": 0}
    for outcome in outcomes:
        counts[outcome["status"]] += 1
    return counts


def _resolve(campaign: Campaign, recipients: list[RecipientIn]) -> tuple[list[dict], dict[int, Profile]]:
    """Find (or, when the campaign allows it, create) each recipient's profile; inline attributes are stored.

    One outcome per recipient, in order: `{"index", "status", "profileId", "reason"}` with status `accepted` or
    `rejected` (excluded is decided later, with the address); and the profiles of those not rejected, by id."""
    by_identity, profiles = _profiles_by_identity([r for r in recipients if r.namespace])
    wanted_ids = [r.profile_id for r in recipients if r.profile_id]
    if wanted_ids:
        profiles.update(Profile.objects.in_bulk(wanted_ids))
    outcomes: list[dict] = []
    upserts: list[tuple[int, dict]] = []
    for index, recipient in enumerate(recipients):
        outcome = {"index": index, "status": "accepted", "profileId": None, "reason": ""}
        outcomes.append(outcome)
        if recipient.profile_id is not None:
            if recipient.profile_id not in profiles:
                outcome.update(status="rejected", reason="unknown_profile")
                continue
            outcome["profileId"] = recipient.profile_id
            if recipient.attributes:
                identity = Identity.objects.filter(profile_id=recipient.profile_id).order_by("pk").first()
                if identity is None:
                    outcome.update(status="rejected", reason="invalid_profile", detail="the profile has no identity")
                    continue
                upserts.append((index, _upsert_input(identity.namespace, identity.value, recipient)))
            continue
        profile_id = by_identity.get((recipient.namespace, recipient.value))
        outcome["profileId"] = profile_id
        if profile_id is None and not campaign.create_profiles:
            outcome.update(status="rejected", reason="unknown_recipient")
            continue
        if profile_id is None or recipient.attributes:
            upserts.append((index, _upsert_input(recipient.namespace, recipient.value, recipient)))
    if upserts:
        stored = profiles_upsert([item for _, item in upserts], source="trigger api", schema=ProfileSchema.load())
        for (index, _), result in zip(upserts, stored, strict=True):
            if result.status == UpsertOutcome.REJECTED:
                problems = "; ".join(f"{where}: {problem}" if where else problem for where, problem in result.errors)
                outcomes[index].update(status="rejected", reason="invalid_profile", detail=problems[:300])
            else:
                outcomes[index]["profileId"] = result.profile_id
        # Created or changed: read as stored.
        profiles.update(Profile.objects.in_bulk([r.profile_id for r in stored if r.profile_id]))
    seen = set()
    for outcome in outcomes:
        if outcome["status"] == "rejected":
            continue
        if outcome["profileId"] in seen:
            outcome.update(status="rejected", reason="duplicate_recipient")
        seen.add(outcome["profileId"])
    kept = {outcome["profileId"] for outcome in outcomes if outcome["status"] != "rejected"}
    return outcomes, {pk: profile for pk, profile in profiles.items() if pk in kept}


def _upsert_input(namespace: str, value: str, recipient: RecipientIn) -> dict:
    """A profile input naming the recipient; an email or phone identity is also the primary address."""
    item = {"identities": {namespace: value}}
    if namespace in ("email", "phone"):
        item[namespace] = value
    if recipient.attributes:
        item["attributes"] = recipient.attributes
    return item


def _profiles_by_identity(recipients) -> tuple[dict[tuple[str, str], int], dict[int, Profile]]:
    """(namespace, value) -> profile id, and those profiles (what an address needs of them): one statement."""
    pairs = sorted({(r.namespace, r.value) for r in recipients})
    if not pairs:
        return {}, {}
    wanted = " OR ".join(["(i.namespace = %s AND i.value = %s)"] * len(pairs))
    sql = (
        f"SELECT i.namespace, i.value, {rawsql.columns(Profile, _PROFILE_FIELDS, 'p')} "  # noqa: S608
        f"FROM {Identity._meta.db_table} i JOIN {Profile._meta.db_table} p ON p.id = i.profile_id WHERE {wanted}"
    )
    with rawsql.cursor() as cursor:
        cursor.execute(sql, [part for pair in pairs for part in pair])
        rows = cursor.fetchall()
    found, profiles = {}, {}
    for namespace, value, *fields in rows:
        profile = profiles.get(fields[0]) or rawsql.instance(Profile, _PROFILE_FIELDS, fields)
        found[(namespace, value)] = profile.pk
        profiles[profile.pk] = profile
    return found, profiles


# What the call needs of a profile: its addresses (Profile.address_for) and its zone (the delivery rules).
_PROFILE_FIELDS = ["id", "email", "phone", "timezone"]


def normalized_recipients(recipients: list[RecipientIn], *, channel: str) -> list[RecipientIn]:
    """The recipients with their identities and address overrides as stored and sent (emails with a lower-case
    domain, phones in E.164), or a 422 naming each identity or address that is not valid. An address is checked
    for the campaign's channel: a display name or a line break in an email address is refused, so what is
    checked against the suppression list is what the relay is given."""
    # The built-in email and phone namespaces cannot be changed or removed: no query for them.
    namespaces = {"email": IdentityNamespace.Kind.EMAIL, "phone": IdentityNamespace.Kind.PHONE}
    if any(recipient.namespace and recipient.namespace not in namespaces for recipient in recipients):
        namespaces = dict(IdentityNamespace.objects.values_list("name", "kind"))
    problems, normalized = [], []
    for index, recipient in enumerate(recipients):
        try:
            if recipient.namespace is not None:
                where = f"/recipients/{index}/identity"
                value = normalize_identity(
                    namespaces.get(recipient.namespace), recipient.namespace, recipient.value, ""
                )
                recipient = replace(recipient, value=value)
            if recipient.address is not None:
                where = f"/recipients/{index}/address"
                recipient = replace(recipient, address=_address_for(channel, recipient.address))
        except ValueError as invalid:
            problems.append((where, str(invalid)))
            continue
        normalized.append(recipient)
    if problems:
        listed = "; ".join(f"{pointer}: {problem}" for pointer, problem in problems[:5])
        raise TriggerRefused(422, "invalid-request", f"invalid request: {listed}", problems)
    return normalized


def _address_for(channel: str, address: str) -> str:
    """An address override as the channel's adapter sends to it, or ValueError saying why it cannot be one."""
    if channel == Channel.EMAIL:
        return normalize_email(address)
    if channel == Channel.SMS:
        return normalize_phone(address, None)
    if channel == Channel.PUSH:
        if any(char.isspace() or not char.isprintable() for char in address):
            raise ValueError("a push token has no spaces or control characters")
        return address
    raise ValueError(f"a {channel} campaign sends to the profile itself: there is no address to override")


def _locked_state(campaign: Campaign, occurrence: str = "") -> tuple[str, int | None, str | None]:
    """The campaign's status, read under a shared lock on its row held to the end of the call's transaction, and
    the run named `occurrence` (id, state) in the same statement. Pause and stop lock the row for update, so they
    wait for the calls in flight and the calls started after them see them: a call never writes into a campaign
    stopped meanwhile, and calls do not wait for each other. SQLite takes the database's write lock at BEGIN
    (transaction_mode IMMEDIATE), which serializes them all the same."""
    lock = " FOR SHARE OF c" if connection.vendor == "postgresql" else ""
    # Table names from the models, values as parameters.
    sql = (
        f"SELECT c.status, r.id, r.state FROM {Campaign._meta.db_table} c "  # noqa: S608
        f"LEFT JOIN {Run._meta.db_table} r ON r.campaign_id = c.id AND r.occurrence = %s WHERE c.id = %s{lock}"
    )
    with rawsql.cursor() as cursor:
        cursor.execute(sql, [occurrence, campaign.pk])
        row = cursor.fetchone()
    if row is None or row[0] != Campaign.Status.ACTIVE:
        state = Campaign.Status(row[0]).label.lower() if row else "deleted"
        raise TriggerRefused(
            409, "campaign-not-live", f"campaign {campaign.pk} is {state}: only an active campaign accepts calls"
        )
    return row


def _unitary_run(campaign: Campaign, now: datetime) -> Run:
    """The run that collects the campaign's unitary calls for its live version. Its planning is not done while
    the version is live, so it does not complete between calls; pause and stop move it with the campaign. When
    another version goes live, the previous version's run is marked planned: it completes once it has sent what
    it holds."""
    occurrence = f"unitary:v{campaign.live_version.number}"
    _, run_id, run_state = _locked_state(campaign, occurrence)
    if run_id is None:
        try:
            with transaction.atomic():
                run = Run.objects.create(
                    campaign=campaign,
                    version=campaign.live_version,
                    kind=Run.Kind.UNITARY,
                    occurrence=occurrence,
                    state=Run.State.SENDING,
                    sending_at=now,
                )
        except IntegrityError:
            run = Run.objects.get(campaign=campaign, occurrence=occurrence)
        Run.objects.filter(campaign=campaign, kind=Run.Kind.UNITARY, planning_done=False).exclude(pk=run.pk).update(
            planning_done=True
        )
        run_id, run_state = run.pk, run.state
    if run_state != Run.State.SENDING:
        raise TriggerRefused(
            409, "campaign-not-live", f"campaign {campaign.pk} is not sending (its run is {run_state})"
        )
    # The row as read (no second query): what the call's rows and its send job need of it.
    return Run(pk=run_id, campaign=campaign, version=campaign.live_version, state=run_state)


def _deliveries(campaign, run, request, recipients, outcomes, profiles, now) -> list[Delivery]:
    """The call's ledger rows, through the delivery rules (campaigns.rules): an excluded recipient's outcome says why,
    and one whose message waits (quiet hours) says until when."""
    configuration = campaign.channel_configuration
    channel = configuration.channel
    kept = [o for o in outcomes if o["status"] != "rejected"]
    candidates = []
    for outcome in kept:
        recipient = recipients[outcome["index"]]
        profile = profiles[outcome["profileId"]]
        address = recipient.address or profile.address_for(channel)
        candidates.append(
            rules.Candidate(profile_id=profile.pk, address=address, due_at=now, timezone=profile.timezone)
        )
    rules.decide(rules.Batch(campaign=campaign, channel=channel, stage=rules.Stage.PLAN, now=now), candidates)
    rows = []
    for outcome, candidate in zip(kept, candidates, strict=True):
        if candidate.reason:
            outcome.update(status="excluded", reason=candidate.reason)
        elif candidate.due_at > now:
            outcome["sendAt"] = candidate.due_at.isoformat()
        rows.append(
            Delivery(
                run=run,
                version_id=run.version_id,
                profile_id=outcome["profileId"],
                channel=channel,
                channel_configuration=configuration,
                trigger_request=request,
                address=candidate.address,
                due_at=candidate.due_at,
                status=Delivery.Status.EXCLUDED if candidate.reason else Delivery.Status.PENDING,
                reason=candidate.reason,
            )
        )
    return rows


# --- Audience calls ------------------------------------------------------------------------------------------


def trigger_audience(
    *,
    campaign: Campaign,
    api_key_prefix: str,
    request_id: str,
    digest: str,
    context: dict,
    send_at: datetime | None = None,
    earlier: EarlierCall | None,
    now: datetime | None = None,
) -> Answer:
    """Send the campaign to its audience as it is when the run is planned (now, or at `send_at`), every
    recipient with the same context, through the same ledger and rules as a scheduled occurrence."""
    now = now or timezone.now()
    if (replay := _replayed(campaign, request_id, digest, earlier)) is not None:
        return replay
    _check_live(campaign, now)
    if campaign.audience_id is None:
        raise TriggerRefused(
            409, "campaign-has-no-audience", f"campaign {campaign.pk} has no audience: use the unitary trigger"
        )
    _check_context_size([context])
    if problems := contracts.violations(contracts.contract_of(campaign), context):
        raise _contract_refusal(problems)
    if send_at is not None and send_at > now + MAX_SEND_AHEAD:
        raise TriggerRefused(
            422, "invalid-request", "sendAt is more than a year ahead", [("/sendAt", "is more than a year ahead")]
        )
    starts = max(send_at or now, now)
    request = TriggerRequest(
        campaign=campaign,
        kind=TriggerRequest.Kind.AUDIENCE,
        api_key_prefix=api_key_prefix,
        request_id=request_id,
        body_hash=digest,
        context={"shared": context, "recipients": {}},
        expires_at=starts + timedelta(hours=settings.TRIGGER_REQUEST_RETENTION_HOURS),
    )
    request.response = {**_answer_head(request), "sendAt": starts.isoformat()}
    try:
        with transaction.atomic():
            _locked_state(campaign)
            # The heartbeat dates the run to its start: the scheduler's stall check leaves it alone until then,
            # and plans it if the delayed job is lost.
            run = Run.objects.create(
                campaign=campaign,
                version=campaign.live_version,
                kind=Run.Kind.AUDIENCE_TRIGGER,
                occurrence=f"trigger:{request.execution_id}",
                heartbeat_at=starts,
            )
            request.run = run
            request.save(force_insert=True)  # the unique (campaign, requestId) decides between racing calls
            delay = (starts - now).total_seconds()
            enqueue_on_commit(
                queue_for(campaign), "campaigns.jobs.plan_run", run.pk, delay=delay if delay > 0 else None
            )
    except IntegrityError:
        if (earlier := _earlier_answer(campaign, request_id, digest)) is None:
            raise
        return earlier
    log.info("campaign %s: audience trigger %s, run %s", campaign.pk, request_id, run.pk)
    return Answer(202, request.response)


def trigger_requests_purge_expired(*, now: datetime, batch: int = 1000) -> int:
    """Empty the context of calls past their retention, a batch per tick so a backlog never holds a long
    transaction; never while one of their messages may still be sent (pending, claimed or in flight), which
    renders it. The call itself stays: its requestId, body hash and answer, so a replay is still answered and
    sends nothing, and its deliveries keep their link."""
    open_messages = Delivery.objects.filter(trigger_request=OuterRef("pk"), status__in=Delivery.OPEN_STATUSES)
    expired = (
        TriggerRequest.objects.filter(expires_at__lt=now)
        .exclude(context={})
        .exclude(Exists(open_messages))
        .values_list("pk", flat=True)[:batch]
    )
    emptied = TriggerRequest.objects.filter(pk__in=list(expired)).update(context={})
    if emptied:
        log.info("emptied the context of %s trigger calls past their retention", emptied)
    return emptied


# --- Status --------------------------------------------------------------------------------------------------

# Ledger statuses as a caller sees them.
_OUTCOMES = {
    Delivery.Status.PENDING: "accepted",
    Delivery.Status.CLAIMED: "accepted",
    Delivery.Status.IN_FLIGHT: "accepted",
    Delivery.Status.SENT: "sent",
    Delivery.Status.DELIVERED: "sent",
    Delivery.Status.OPENED: "sent",
    Delivery.Status.CLICKED: "sent",
    Delivery.Status.FAILED: "failed",
    Delivery.Status.BOUNCED: "failed",
    Delivery.Status.COMPLAINED: "sent",
    Delivery.Status.UNKNOWN: "unknown",
    Delivery.Status.EXCLUDED: "excluded",
    Delivery.Status.CANCELLED: "cancelled",
}


def trigger_status(request: TriggerRequest) -> dict:
    """Where a call stands: its state, counts by outcome, and for a unitary call each recipient's outcome."""
    counts = {"accepted": 0, "sent": 0, "failed": 0, "unknown": 0, "excluded": 0, "cancelled": 0}
    by_status = request.deliveries.values("status").annotate(n=Count("id")).order_by()
    for row in by_status:
        counts[_OUTCOMES[row["status"]]] += row["n"]
    run = request.run
    body = {
        "executionId": str(request.execution_id),
        "requestId": request.request_id,
        "campaignId": request.campaign_id,
        "kind": request.kind,
        "createdAt": request.created_at.isoformat(),
        "counts": counts,
    }
    if request.kind == TriggerRequest.Kind.AUDIENCE:
        body["state"] = _audience_state(run, counts)
        body["sendAt"] = request.response.get("sendAt")
        return body
    counts["rejected"] = request.response.get("counts", {}).get("rejected", 0)
    body["state"] = "complete"
    if counts["accepted"]:
        # Messages not yet sent: held while the campaign is paused, never sent once it is stopped.
        held = {Run.State.PAUSED: "paused", Run.State.STOPPED: "stopped"}
        body["state"] = held.get(run.state, "sending") if run else "sending"
    elif counts["cancelled"]:
        body["state"] = "stopped"  # stopped before they went out: they never will
    deliveries = {
        row["profile_id"]: row
        for row in request.deliveries.values("id", "profile_id", "status", "reason", "detail", "sent_at")
    }
    recipients = []
    for given in request.response.get("recipients", []):
        outcome = {"index": given["index"], "profileId": given.get("profileId"), "status": given["status"]}
        if given["status"] == "rejected":
            outcome["reason"] = given.get("reason", "")
        elif (row := deliveries.get(given.get("profileId"))) is not None:
            outcome["deliveryId"] = row["id"]
            outcome["status"] = _OUTCOMES[row["status"]]
            outcome["reason"] = row["reason"]
            outcome["sentAt"] = row["sent_at"].isoformat() if row["sent_at"] else None
        else:
            outcome["profileId"] = None  # the person was erased since: only the index remains
        recipients.append(outcome)
    body["recipients"] = recipients
    return body


def _audience_state(run: Run | None, counts: dict) -> str:
    if run is None:
        return "unknown"
    if run.state == Run.State.PLANNING:
        return "scheduled" if run.heartbeat_at and run.heartbeat_at > timezone.now() else "planning"
    if run.state == Run.State.SENDING and not counts["accepted"] and run.planning_done:
        return "complete"
    return {Run.State.COMPLETE: "complete", Run.State.STOPPED: "stopped", Run.State.FAILED: "failed"}.get(
        run.state, run.state
    )
