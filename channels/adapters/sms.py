"""SMS through a Twilio-compatible REST API: one form POST per message, several in flight."""

from channels.adapters.base import OutboundMessage, Outcome, Reason, SendResult
from channels.adapters.http import HttpAdapter, bounded, json_or_empty, status_text

# Twilio error codes (https://www.twilio.com/docs/api/errors) that say the number can never be messaged.
INVALID_NUMBER_CODES = {
    21211,  # invalid 'To' phone number
    21614,  # 'To' number is not a valid mobile number
    21217,  # phone number does not appear to be valid
    21401,  # invalid phone number
    21407,  # this phone number type does not support SMS
}
OPTED_OUT_CODES = {21610}  # the recipient replied STOP: the provider refuses until they reply START


class SmsAdapter(HttpAdapter):
    channel = "sms"

    def __init__(self, configuration):
        super().__init__(configuration)
        s = self.settings
        self.url = f"{s.base_url}/2010-04-01/Accounts/{s.account_sid}/Messages.json"
        self.session.auth = (s.account_sid, s.auth_token.get_secret_value())

    def build_request(self, message: OutboundMessage) -> dict | SendResult:
        body = message.text or message.subject
        if not body.strip():
            return SendResult(message.delivery_id, Outcome.PERMANENT, reason=Reason.REJECTED, detail="empty message")
        return {
            "method": "POST",
            "url": self.url,
            "data": {"To": message.to, "From": self.settings.from_number, "Body": body},
            "headers": {"I-Twilio-Idempotency-Token": message.idempotency_key},
        }

    def provider_id(self, message, response) -> str:
        return str(json_or_empty(response).get("sid", ""))[:255]

    def classify_error(self, message, response) -> SendResult | None:
        if not 400 <= response.status_code < 500 or response.status_code in (401, 403, 408, 429):
            return None
        # Twilio's error format: {"code": 21211, "message": "...", "more_info": ..., "status": 400}. Only the code
        # and the message are kept, never the rest of the answer.
        error = json_or_empty(response)
        code = error.get("code")
        if not isinstance(code, int) or isinstance(code, bool):
            return None
        detail = f"{status_text(response.status_code)}, error {code}: {bounded(error.get('message'))}"
        if code in INVALID_NUMBER_CODES:
            reason = Reason.INVALID_ADDRESS
        elif code in OPTED_OUT_CODES:
            reason = Reason.RECIPIENT_OPTED_OUT
        else:
            reason = f"twilio_{code}"
        return SendResult(message.delivery_id, Outcome.PERMANENT, reason=reason, detail=detail)
