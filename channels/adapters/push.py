"""Push through Firebase Cloud Messaging's HTTP v1 API.

Authentication is OAuth2's JWT-bearer flow for a service account: a JWT signed (RS256) with the account's
private key is exchanged at its token URI for an access token, kept until shortly before it expires.
"""

import base64
import json
import math
import threading
import time

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from channels.adapters.base import OutboundMessage, Outcome, Reason, SendResult
from channels.adapters.http import HttpAdapter, bounded, forbidden_target, json_or_empty, status_text

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Renew the access token this long before it expires, so no request goes out with one about to lapse.
EXPIRY_MARGIN = 300
# FCM error codes that mean the token will never reach a device of this project.
INVALID_TOKEN_CODES = {"UNREGISTERED", "SENDER_ID_MISMATCH"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_jwt(*, private_key_pem: str, claims: dict, key_id: str = "") -> str:
    """A compact RS256 JWT."""
    header = {"alg": "RS256", "typ": "JWT", **({"kid": key_id} if key_id else {})}
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    key = load_pem_private_key(private_key_pem.encode(), password=None)
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


class _TokenRefused(Exception):
    def __init__(self, reason: str, detail: str, outcome: Outcome = Outcome.TRANSIENT):
        self.reason = reason
        self.detail = detail[:500]
        self.outcome = outcome


class PushAdapter(HttpAdapter):
    channel = "push"

    def __init__(self, configuration):
        super().__init__(configuration)
        s = self.settings
        account = s.service_account()
        self._client_email = account["client_email"]
        self._private_key = account["private_key"]
        self._key_id = account.get("private_key_id", "")
        self.token_uri = s.token_uri or account.get("token_uri") or DEFAULT_TOKEN_URI
        self.url = f"{s.send_endpoint}/v1/projects/{s.project_id}/messages:send"
        self._access_token = ""
        self._expires_at = 0.0
        self._bearer = ""  # the access token of the slice being sent
        self._token_lock = threading.Lock()
        self.tokens_fetched = 0

    def before_slice(self, messages: list[OutboundMessage]) -> list[SendResult] | None:
        try:
            self._bearer = self.access_token()
        except _TokenRefused as refused:
            return [
                SendResult(message.delivery_id, refused.outcome, reason=refused.reason, detail=refused.detail)
                for message in messages
            ]
        return None

    def access_token(self) -> str:
        """The cached access token, fetched anew when it is about to expire."""
        with self._token_lock:
            if self._access_token and time.time() < self._expires_at - EXPIRY_MARGIN:
                return self._access_token
            now = int(time.time())
            assertion = signed_jwt(
                private_key_pem=self._private_key,
                key_id=self._key_id,
                claims={
                    "iss": self._client_email,
                    "scope": SCOPE,
                    "aud": self.token_uri,
                    "iat": now,
                    "exp": now + 3600,
                },
            )
            try:
                response = self.session.post(
                    self.token_uri, data={"grant_type": JWT_BEARER, "assertion": assertion}, timeout=self.timeout
                )
            except requests.RequestException as exc:
                if refused := forbidden_target(exc):
                    detail = f"token endpoint: {refused.describe(self.channel)}"
                    raise _TokenRefused(Reason.FORBIDDEN_TARGET, detail, Outcome.PERMANENT) from None
                # The type only: an error's text can quote the endpoint's answer.
                raise _TokenRefused(Reason.CONNECT_FAILED, f"token endpoint: {type(exc).__name__}") from None
            body = json_or_empty(response)
            if response.status_code != 200 or not body.get("access_token"):
                # OAuth2's error fields name what is wrong ("invalid_grant"), never the assertion; nothing else of
                # the answer is kept.
                error = f"{bounded(body.get('error'), 60)} {bounded(body.get('error_description'))}".strip()
                raise _TokenRefused(Reason.AUTH_FAILED, f"token endpoint: {status_text(response.status_code)} {error}")
            self._access_token = body["access_token"]
            self._expires_at = time.time() + _token_lifetime(body.get("expires_in"))
            self.tokens_fetched += 1
            return self._access_token

    def _forget_token(self, rejected: str) -> None:
        with self._token_lock:
            if self._access_token == rejected:
                self._access_token, self._expires_at = "", 0.0

    def build_request(self, message: OutboundMessage) -> dict:
        notification = {"title": message.subject, "body": message.text}
        return {
            "method": "POST",
            "url": self.url,
            "json": {
                "message": {
                    "token": message.to,
                    "notification": notification,
                    # Data values must be strings; the app can report opens with the delivery id.
                    "data": {"delivery_id": str(message.delivery_id)},
                }
            },
            "headers": {"Authorization": f"Bearer {self._bearer}"},
        }

    def provider_id(self, message, response) -> str:
        return str(json_or_empty(response).get("name", ""))[:255]

    def classify_error(self, message, response) -> SendResult | None:
        error = json_or_empty(response).get("error")
        if not isinstance(error, dict):
            return None
        # FCM's error format (google.rpc.Status): its status, error codes and message are kept, nothing else.
        status = error.get("status", "")
        details = error.get("details") if isinstance(error.get("details"), list) else []
        codes = {bounded(detail.get("errorCode"), 40) for detail in details if isinstance(detail, dict)} - {""}
        detail = (
            f"{status_text(response.status_code)} {bounded(status, 40)} {'/'.join(sorted(codes))}: "
            f"{bounded(error.get('message'))}"
        )
        detail = detail[:500]
        if codes & INVALID_TOKEN_CODES or (status == "INVALID_ARGUMENT" and _about_the_token(error)):
            return SendResult(message.delivery_id, Outcome.PERMANENT, reason=Reason.INVALID_ADDRESS, detail=detail)
        if response.status_code == 401:
            # The access token was refused (revoked, or expired early): fetch a new one for the next slice.
            self._forget_token(self._bearer)
            return SendResult(message.delivery_id, Outcome.TRANSIENT, reason=Reason.AUTH_FAILED, detail=detail)
        if status == "INVALID_ARGUMENT":
            return SendResult(message.delivery_id, Outcome.PERMANENT, reason="fcm_invalid_argument", detail=detail)
        return None


def _token_lifetime(value) -> float:
    """Seconds the access token lasts, as the endpoint said (an hour when it said nothing usable)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 3600.0
    return seconds if math.isfinite(seconds) and 0 < seconds <= 86_400 else 3600.0


def _about_the_token(error: dict) -> bool:
    details = error.get("details")
    for item in details if isinstance(details, list) else []:
        violations = item.get("fieldViolations") if isinstance(item, dict) else None
        for violation in violations if isinstance(violations, list) else []:
            if isinstance(violation, dict) and violation.get("field") in ("message.token", "token"):
                return True
    return "registration token" in str(error.get("message", "")).lower()
