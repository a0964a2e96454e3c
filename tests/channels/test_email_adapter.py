"""The email adapter against real SMTP servers on loopback."""

import base64
import time

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from channels.adapters.base import OutboundMessage, Outcome
from channels.adapters.email import EmailAdapter, delivery_id_from_verp
from tests.conftest import make_email_configuration
from tests.smtp_servers import DroppingSMTPServer, RecordingSMTPServer, free_port


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


def test_envelope_sender_is_a_verp_address_carrying_the_delivery_id(adapter_for, smtp_server):
    adapter = adapter_for(port=smtp_server.port, bounce_domain="bounces.example.com")

    [result] = adapter.send([message(42)])

    assert result.outcome == Outcome.SENT
    [received] = smtp_server.messages
    assert received["mail_from"] == "bounce+42@bounces.example.com"
    assert received["message"]["From"] == "Shop <news@example.com>"
    assert delivery_id_from_verp(received["mail_from"]) == 42


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("bounce+42@bounces.example.com", 42),
        ("<BOUNCE+9007199254740993@b.example.com>", 9007199254740993),
        ("bounce+@b.example.com", None),
        ("bounce+12x@b.example.com", None),
        ("news@example.com", None),
        ("bounce+99999999999999999999@b.example.com", None),
    ],
)
def test_delivery_id_from_verp(address, expected):
    assert delivery_id_from_verp(address) == expected


def test_marketing_mail_carries_one_click_list_unsubscribe_headers(adapter_for, smtp_server):
    adapter = adapter_for(port=smtp_server.port)
    url = "https://campaigns.example.com/u/abc.def"

    adapter.send(
        [
            message(1, unsubscribe_url=url),
            message(2, unsubscribe_url=url, marketing=False),
            message(3),
        ]
    )

    received = {item["rcpt_tos"][0]: item["message"] for item in smtp_server.messages}
    marketing = received["r1@example.com"]
    assert marketing["List-Unsubscribe"] == f"<{url}>"
    assert marketing["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "List-Unsubscribe" not in received["r2@example.com"], "transactional mail has no unsubscribe header"
    assert "List-Unsubscribe" not in received["r3@example.com"], "no URL, no header"


def test_list_unsubscribe_can_be_switched_off(adapter_for, smtp_server):
    adapter = adapter_for(port=smtp_server.port, list_unsubscribe=False)

    adapter.send([message(1, unsubscribe_url="https://campaigns.example.com/u/x")])

    assert "List-Unsubscribe" not in smtp_server.messages[0]["message"]


def test_long_non_ascii_subject_is_folded_with_crlf_only(adapter_for, smtp_server):
    adapter = adapter_for(port=smtp_server.port)
    subject = "Soldes d'été ☀️ " * 12

    adapter.send([message(1, subject=subject)])

    raw = smtp_server.messages[0]["raw"]
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\n" not in head.replace(b"\r\n", b""), "no bare LF in the header"
    assert str(smtp_server.messages[0]["message"]["Subject"]) == subject


@pytest.fixture(scope="module")
def dkim_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name, timeout=5):
        # The TXT record a receiver would find at <selector>._domainkey.<domain>.
        return record if name == b"mail2026._domainkey.example.com." else None

    return pem, dns


def test_dkim_signature_verifies_with_the_published_key_and_covers_list_unsubscribe(adapter_for, smtp_server, dkim_key):
    pem, dns = dkim_key
    adapter = adapter_for(
        port=smtp_server.port, dkim_domain="example.com", dkim_selector="mail2026", dkim_private_key=pem
    )

    adapter.send(
        [
            message(
                1,
                subject="Soldes d'été ☀️ " * 6,
                unsubscribe_url="https://campaigns.example.com/u/tok",
                html="<p>\n.x</p>",
            )
        ]
    )

    raw = smtp_server.messages[0]["raw"]
    assert raw.startswith(b"DKIM-Signature:")
    assert dkim.verify(raw, dnsfunc=dns)
    signed = smtp_server.messages[0]["message"]["DKIM-Signature"]
    tags = dict(part.strip().split("=", 1) for part in str(signed).split(";") if "=" in part)
    assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post"} <= set(tags["h"].split(":"))
    assert (tags["d"], tags["s"], tags["a"]) == ("example.com", "mail2026", "rsa-sha256")


def test_dkim_signature_breaks_when_the_body_or_an_unsubscribe_header_is_changed(adapter_for, smtp_server, dkim_key):
    pem, dns = dkim_key
    adapter = adapter_for(
        port=smtp_server.port, dkim_domain="example.com", dkim_selector="mail2026", dkim_private_key=pem
    )

    adapter.send([message(1, unsubscribe_url="https://campaigns.example.com/u/tok")])

    raw = smtp_server.messages[0]["raw"]
    assert dkim.verify(raw, dnsfunc=dns)
    assert not dkim.verify(raw.replace(b"Hello 1", b"Hello 9"), dnsfunc=dns)
    assert not dkim.verify(raw.replace(b"/u/tok", b"/u/evil"), dnsfunc=dns)
    added = raw.replace(b"MIME-Version", b"List-Unsubscribe: <https://evil.example/>\r\nMIME-Version", 1)
    assert not dkim.verify(added, dnsfunc=dns), "a second List-Unsubscribe header is caught by oversigning"


def test_kept_connections_the_relay_closed_while_idle_are_replaced_without_failing_a_message(adapter_for):
    # The relay drops sessions idle for half a second (the mail catcher's aiosmtpd after 300 s, Postfix after its
    # smtpd_timeout): the next slice finds every kept connection closed before MAIL FROM, when nothing went out.
    # Before, the first message of each connection waited a minute for its retry, and the run's end with it.
    server = RecordingSMTPServer(timeout=0.5).start()
    try:
        adapter = adapter_for(port=server.port, connections=2)
        assert {r.outcome for r in adapter.send([message(i) for i in range(4)])} == {Outcome.SENT}
        time.sleep(1.5)

        results = adapter.send([message(10 + i) for i in range(4)])
    finally:
        server.stop()

    assert [r.outcome for r in results] == [Outcome.SENT] * 4
    assert len(server.messages) == 8
    assert adapter.connections_opened == 4
