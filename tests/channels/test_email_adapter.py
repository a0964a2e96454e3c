"""The email adapter against real SMTP servers on loopback."""

import pytest

from channels.adapters.base import OutboundMessage, Outcome
from channels.adapters.email import EmailAdapter
from tests.conftest import make_email_configuration
from tests.smtp_servers import DroppingSMTPServer, free_port


def message(n: int, **overrides) -> OutboundMessage:
    values = {
        "delivery_id": n,
        "to": f"r{n}@example.com",
        "subject": f"Subject {n}",
        "html": f"<p>Hello {n}</p>",
        "text": f"Hello {n}",
    }
    return OutboundMessage(**{**values, **overrides})


@pytest.fixture
def adapter_for(db):
    opened = []

    def open_adapter(**settings):
        adapter = EmailAdapter(make_email_configuration(**settings))
        opened.append(adapter)
        return adapter

    yield open_adapter
    for adapter in opened:
        adapter.close()


def test_sends_multipart_message_with_headers_that_carry_the_delivery_id(adapter_for, smtp_server):
    adapter = adapter_for(port=smtp_server.port, reply_to="help@example.com")

    [result] = adapter.send([message(42)])

    assert result.outcome == Outcome.SENT
    assert result.provider_message_id == "<42.campaign@example.com>"
    [received] = smtp_server.messages
    assert received["mail_from"] == "news@example.com"
    assert received["rcpt_tos"] == ["r42@example.com"]
    parsed = received["message"]
    assert parsed["Message-ID"] == "<42.campaign@example.com>"
    assert parsed["From"] == "Shop <news@example.com>"
    assert parsed["Reply-To"] == "help@example.com"
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.get_body(("plain",)).get_content().strip() == "Hello 42"
    assert parsed.get_body(("html",)).get_content().strip() == "<p>Hello 42</p>"


def test_non_ascii_subject_sender_name_and_body_are_encoded(adapter_for, smtp_server):
    adapter = adapter_for(port=smtp_server.port, from_name="Café Zoë")
    long_line = "Ünïcödé " * 40

    adapter.send([message(1, subject="Soldes d'été ☀️", text=long_line, html=f"<p>{long_line}</p>\n.\n.leading dot")])

    raw = smtp_server.messages[0]["raw"]
    assert raw.isascii(), "headers and bodies must be encoded for 7-bit transport"
    parsed = smtp_server.messages[0]["message"]
    assert str(parsed["Subject"]) == "Soldes d'été ☀️"
    assert parsed["From"].addresses[0].display_name == "Café Zoë"
    assert parsed.get_body(("plain",)).get_content().strip() == long_line.strip()
    html = parsed.get_body(("html",)).get_content()
    assert "\n.\n.leading dot" in html.replace("\r\n", "\n")


def test_internationalized_address_uses_smtputf8(adapter_for, smtp_server):
    adapter = adapter_for(port=smtp_server.port)

    [result] = adapter.send([message(7, to="zoë@exämple.com")])

    assert result.outcome == Outcome.SENT
    assert smtp_server.messages[0]["rcpt_tos"] == ["zoë@exämple.com"]


def test_connections_are_pooled_and_reused_across_slices(adapter_for, smtp_server):
    adapter = adapter_for(port=smtp_server.port, connections=3)

    for batch in range(4):
        results = adapter.send([message(batch * 10 + i) for i in range(9)])
        assert {r.outcome for r in results} == {Outcome.SENT}

    assert len(smtp_server.messages) == 36
    assert smtp_server.sessions == 3
    assert adapter.connections_opened == 3


def test_rejected_recipients_are_classified_permanent_or_transient(adapter_for, smtp_server):
    smtp_server.recorder.rejected_recipients = {
        "dead@example.com": "550 5.1.1 No such user",
        "full@example.com": "452 4.2.2 Mailbox full",
    }
    adapter = adapter_for(port=smtp_server.port, connections=1)

    dead, full, fine = adapter.send([message(1, to="dead@example.com"), message(2, to="full@example.com"), message(3)])

    assert (dead.outcome, dead.reason) == (Outcome.PERMANENT, "smtp_5.1.1")
    assert "No such user" in dead.detail
    assert (full.outcome, full.reason) == (Outcome.TRANSIENT, "smtp_4.2.2")
    assert fine.outcome == Outcome.SENT
    assert len(smtp_server.messages) == 1


def test_connection_dropped_after_data_is_indeterminate(adapter_for):
    server = DroppingSMTPServer().start()
    try:
        adapter = adapter_for(port=server.port, connections=1)
        first, second = adapter.send([message(1), message(2)])
    finally:
        server.stop()

    assert first.outcome == Outcome.INDETERMINATE
    assert first.reason == "connection_lost"
    # The adapter reconnects for the next message rather than giving up on the slice.
    assert second.outcome == Outcome.INDETERMINATE
    assert server.received_data == 2


def test_unreachable_relay_is_a_transient_failure_for_every_message(adapter_for):
    adapter = adapter_for(port=free_port(), connections=2)

    results = adapter.send([message(i) for i in range(5)])

    assert {r.outcome for r in results} == {Outcome.TRANSIENT}
    assert {r.reason for r in results} == {"connect_failed"}
    assert "cannot connect to 127.0.0.1" in results[0].detail
