"""The ready-to-run trigger call an API-triggered campaign's page shows: its endpoint, and a curl command whose
body carries one recipient and the context the campaign's contract examples make (docs/api.md has the API)."""

import json
import shlex
import uuid

from campaigns import contracts
from campaigns.models import Campaign

# The key stays in the caller's environment: the page never shows one.
API_KEY_VARIABLE = "CAMPAIGNS_API_KEY"
EXAMPLE_RECIPIENT = {"identity": {"namespace": "email", "value": "ada@example.com"}}


def trigger_path(campaign: Campaign) -> str:
    return f"/api/v1/campaigns/{campaign.pk}/trigger"


def example_request_id() -> str:
    """A requestId that looks like what a caller would send: unique per call (a retry sends the same one)."""
    return f"req-{uuid.uuid4()}"


def trigger_body(campaign: Campaign, *, request_id: str) -> dict:
    return {
        "requestId": request_id,
        "context": contracts.example_context(contracts.contract_of(campaign)),
        "recipients": [EXAMPLE_RECIPIENT],
    }


def trigger_curl(*, endpoint: str, body: dict) -> str:
    """A curl command for a POSIX shell: every argument quoted, the key read from $CAMPAIGNS_API_KEY."""
    payload = json.dumps(body, indent=2, ensure_ascii=False)
    return " \\\n  ".join(
        [
            f"curl -sS -X POST {shlex.quote(endpoint)}",
            f'-H "Authorization: Bearer ${API_KEY_VARIABLE}"',
            "-H 'Content-Type: application/json'",
            f"--data-raw {shlex.quote(payload)}",
        ]
    )
