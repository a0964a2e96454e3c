"""Outbound requests of the HTTP channels never reach loopback, private, link-local or other non-public
addresses unless CHANNELS_ALLOW_PRIVATE_NETWORKS is on, whatever a name resolves to when connecting, and no page
shows what a target answered.

The test settings turn the setting on (the fake providers listen on 127.0.0.1); these tests turn it off. No test
sends traffic off loopback: the `connects` fixture records every socket connection and refuses any other.
"""

import errno
import ipaddress
import json
import socket
import ssl
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from django.urls import reverse
from django.utils import timezone

from audiences.models import Audience, Profile
from campaigns.engine import planning, scheduler, sending
from campaigns.models import Delivery, Run
from campaigns.services.lifecycle import Content, campaign_activate, campaign_create
from channels.adapters.base import OutboundMessage, Outcome
from channels.adapters.http import address_refusal
from channels.models import ChannelConfiguration, Suppression
from permissions.models import AuditEvent
from tests.channels.conftest import make_configuration
from tests.channels.http_servers import ProviderServer, Reply
from tests.channels.test_configuration_pages import create_url, post_data

SECRET = "webhook-signing-secret-0123"
SETTING = "CHANNELS_ALLOW_PRIVATE_NETWORKS"
# What a server on the private network might answer: it must never reach a page.
INTERNAL_ANSWER = "internal-admin-token-5f1e9a (do not show)"


@pytest.fixture
def private_networks_refused(settings):
    settings.CHANNELS_ALLOW_PRIVATE_NETWORKS = False


@pytest.fixture
def connects(monkeypatch):
    """Every (address, port) a socket connects to during the test. A connection off loopback is refused here,
    before any packet leaves, so a test that goes wrong still sends nothing out."""
    attempted = []
    real_connect = socket.socket.connect

    def connect(sock, address):
        if isinstance(address, tuple):
            attempted.append((address[0], address[1]))
            try:
                loopback = ipaddress.ip_address(address[0]).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                raise OSError(errno.ENETUNREACH, "the tests send nothing off loopback")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempted


class FakeDns:
    """The DNS, which is outside the machine: `answer(name, lookup, ...)` answers each lookup of `name` with the
    next `lookup` (an address, or a list of them), the last one repeating; other names resolve as usual."""

    def __init__(self, real_getaddrinfo):
        self._real = real_getaddrinfo
        self._answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []

    def answer(self, name: str, *lookups: str | list[str]) -> None:
        self._answers[name] = [[lookup] if isinstance(lookup, str) else lookup for lookup in lookups]

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 - socket's own names
        if host not in self._answers:
            return self._real(host, port, family, type, proto, flags)
        self.lookups.append(host)
        answers = self._answers[host]
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        return [_address_info(address, port) for address in addresses]


def _address_info(address: str, port: int) -> tuple:
    if ipaddress.ip_address(address).version == 6:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))


@pytest.fixture
def dns(monkeypatch):
    fake = FakeDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


def send_test(client, personas, configuration, **data):
    client.force_login(personas["ada"])
    url = reverse("channels:configuration_send_test", args=[configuration.pk])
    return client.post(url, data, headers={"HX-Request": "true"})


def webhook(url: str) -> ChannelConfiguration:
    return make_configuration("webhook", name=f"Hook {url}", url=url, signing_secret=SECRET)


def refusal(target: str, kind: str) -> str:
    return f"refused: webhook target {target} is {kind} (set {SETTING}=1 to allow)"


# Send a test ---------------------------------------------------------------------------------------------


def test_a_test_send_to_a_loopback_server_is_refused_and_shows_nothing_of_it(
    client, personas, provider, connects, private_networks_refused
):
    provider.script = lambda request: Reply(200, {"id": INTERNAL_ANSWER})
    hook = webhook(f"{provider.url}/")

    response = send_test(client, personas, hook)

    html = response.content.decode()
    assert provider.requests == []
    assert ("127.0.0.1", provider.port) not in connects
    assert "<strong>Not sent</strong> (permanent: <code>forbidden_target</code>)" in html
    assert refusal("127.0.0.1", "a loopback address") in html
    assert INTERNAL_ANSWER not in html
    event = AuditEvent.objects.get(action="channel_configuration.test_sent")
    assert event.after == {"to": "", "outcome": "permanent", "reason": "forbidden_target"}


@pytest.mark.parametrize(
    ("host", "shown", "kind"),
    [
        ("169.254.169.254", "169.254.169.254", "a link-local address"),
        ("[::1]", "::1", "a loopback address"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1", "a loopback address"),
        ("10.0.0.1", "10.0.0.1", "a private address"),
        ("0.0.0.0", "0.0.0.0", "an unspecified address"),
        ("100.64.0.1", "100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("[fe80::1]", "fe80::1", "a link-local address"),
        ("[fd00:ec2::254]", "fd00:ec2::254", "a private address"),
        ("127.1", "127.0.0.1", "a loopback address"),
    ],
)
def test_a_test_send_to_a_literal_address_off_the_internet_is_refused_before_connecting(
    client, personas, connects, private_networks_refused, host, shown, kind
):
    port = 47613  # nothing else of the test connects to it
    hook = webhook(f"http://{host}:{port}/latest/meta-data/")

    html = send_test(client, personas, hook).content.decode()

    assert [address for address in connects if address[1] == port] == []
    assert "<code>forbidden_target</code>" in html
    assert refusal(shown, kind) in html


def test_a_name_that_resolves_to_loopback_is_refused_when_connecting(
    client, personas, provider, connects, dns, private_networks_refused
):
    # Saving checks only literal addresses: the name is accepted, and what it resolves to decides each time.
    dns.answer("hooks.example.net", "127.0.0.1")
    form = post_data(
        "webhook", name="Rebinding", url=f"http://hooks.example.net:{provider.port}/", signing_secret=SECRET
    )
    client.force_login(personas["ada"])
    client.post(create_url("webhook"), form)
    hook = ChannelConfiguration.objects.get(name="Rebinding")

    html = send_test(client, personas, hook).content.decode()

    assert provider.requests == []
    assert ("127.0.0.1", provider.port) not in connects
    assert dns.lookups == ["hooks.example.net"]
    assert refusal("hooks.example.net (127.0.0.1)", "a loopback address") in html


def test_localhost_is_refused_when_connecting(client, personas, provider, connects, private_networks_refused):
    hook = webhook(f"http://localhost:{provider.port}/")

    html = send_test(client, personas, hook).content.decode()

    assert provider.requests == []
    assert [address for address in connects if address[1] == provider.port] == []
    assert "refused: webhook target localhost (" in html and "is a loopback address" in html


def test_a_name_with_one_private_address_among_public_ones_is_refused(
    client, personas, connects, dns, private_networks_refused
):
    dns.answer("mixed.example.net", ["93.184.215.14", "10.1.2.3"])
    hook = webhook("http://mixed.example.net/")

    html = send_test(client, personas, hook).content.decode()

    assert [address for address in connects if address[1] == 80] == []
    assert refusal("mixed.example.net (10.1.2.3)", "a private address") in html


def test_the_address_checked_is_the_address_connected_to(
    client, personas, provider, connects, dns, private_networks_refused
):
    # A name answering a public address first and loopback afterwards: a second lookup after the check would
    # reach the loopback server. The connection goes to the checked address (refused by `connects`, off loopback).
    dns.answer("rebind.example.net", "93.184.215.14", "127.0.0.1")
    hook = webhook(f"http://rebind.example.net:{provider.port}/")

    html = send_test(client, personas, hook).content.decode()

    assert provider.requests == []
    assert [address for address in connects if address[1] == provider.port] == [("93.184.215.14", provider.port)]
    assert dns.lookups == ["rebind.example.net"]
    assert "<code>connect_failed</code>" in html


def test_a_proxy_from_the_environment_is_not_used(client, personas, provider, monkeypatch):
    proxy = ProviderServer().start()
    try:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy.url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        assert requests.utils.get_environ_proxies(provider.url)  # a default session would go through it
        hook = webhook(f"{provider.url}/in")

        html = send_test(client, personas, hook).content.decode()
    finally:
        proxy.stop()

    assert proxy.requests == []
    assert [request.path for request in provider.requests] == ["/in"]
    assert "<strong>Sent.</strong>" in html


# Allowed: the same targets work ----------------------------------------------------------------------------


def test_with_the_setting_on_a_name_connects_to_its_address_and_keeps_its_host_header(
    client, personas, provider, connects, dns
):
    dns.answer("receiver.example.net", "127.0.0.1")
    hook = webhook(f"http://receiver.example.net:{provider.port}/in")

    html = send_test(client, personas, hook).content.decode()

    [request] = provider.requests
    assert request.headers["host"] == f"receiver.example.net:{provider.port}"
    assert ("127.0.0.1", provider.port) in connects
    assert "<strong>Sent.</strong>" in html


def test_tls_names_the_host_and_checks_its_certificate_not_the_address(client, personas, dns, tmp_path):
    listener = TlsListener(tmp_path).start()
    dns.answer("secure.example.net", "127.0.0.1")
    hook = webhook(f"https://secure.example.net:{listener.port}/in")

    html = send_test(client, personas, hook).content.decode()
    listener.stop()

    assert listener.server_names == ["secure.example.net"]  # SNI: the name, although the socket went to 127.0.0.1
    # Its certificate, for that name, is signed by no authority the adapter trusts: verification still applies.
    assert "<code>connect_failed</code>" in html and "CERTIFICATE_VERIFY_FAILED" in html


def test_an_answers_body_is_never_shown_only_its_status(client, personas, provider):
    provider.queue(Reply(500, body=INTERNAL_ANSWER.encode()), Reply(404, {"error": INTERNAL_ANSWER}))
    hook = webhook(f"{provider.url}/in")

    first = send_test(client, personas, hook).content.decode()
    second = send_test(client, personas, hook).content.decode()

    assert len(provider.requests) == 2
    assert "(transient: <code>provider_error</code>)" in first and "HTTP 500 Internal Server Error" in first
    assert "(permanent: <code>http_404</code>)" in second and "HTTP 404 Not Found" in second
    assert INTERNAL_ANSWER not in first + second


def test_a_broken_answer_is_not_quoted(client, personas, provider):
    # Chunked, but the first line is not a chunk size: the error's own text would quote it.
    broken = Reply(200, body=INTERNAL_ANSWER.encode() + b"\r\n", headers={"Transfer-Encoding": "chunked"})
    provider.queue(broken)
    hook = webhook(f"{provider.url}/in")

    html = send_test(client, personas, hook).content.decode()

    assert len(provider.requests) == 1
    assert "(indeterminate: <code>connection_lost</code>)" in html
    assert INTERNAL_ANSWER not in html


def test_an_sms_providers_body_is_not_shown_but_its_error_message_is(client, personas, provider):
    provider.queue(
        Reply(400, body=INTERNAL_ANSWER.encode(), headers={"Content-Type": "text/plain"}),
        Reply(400, {"code": 21211, "message": "Invalid 'To' Phone Number", "more_info": INTERNAL_ANSWER}),
    )
    texts = make_configuration(
        "sms", base_url=provider.url, account_sid="AC1", auth_token="sms-token-0a1b2c3d", from_number="+15559990000"
    )

    first = send_test(client, personas, texts, to="+15551230000").content.decode()
    second = send_test(client, personas, texts, to="+15551230000").content.decode()

    assert len(provider.requests) == 2
    assert "(permanent: <code>http_400</code>)" in first and "HTTP 400 Bad Request" in first
    assert "<code>invalid_address</code>" in second and "error 21211: Invalid &#x27;To&#x27; Phone Number" in second
    assert INTERNAL_ANSWER not in first + second


# A campaign ------------------------------------------------------------------------------------------------


def send_webhook_campaign(personas, url: str, people: int) -> Run:
    Profile.objects.bulk_create(Profile(attributes={"n": i}) for i in range(people))
    campaign = campaign_create(
        actor=personas["april"],
        name="CRM sync",
        channel_configuration=webhook(url),
        audience=Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL),
        content=Content("Hi", "<p>Hi</p>", "Hi"),
    )
    campaign_activate(campaign=campaign, actor=personas["april"])
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    sending.send_run(run_id=run_id)
    return Run.objects.get(pk=run_id)


@pytest.mark.django_db(transaction=True)
def test_a_webhook_campaign_to_loopback_fails_each_delivery_and_the_run_goes_on(
    personas, redis, provider, private_networks_refused
):
    run = send_webhook_campaign(personas, f"{provider.url}/in", people=12)  # 3 slices of 5

    assert provider.requests == []
    assert {(d.status, d.reason) for d in run.deliveries.all()} == {(Delivery.Status.FAILED, "forbidden_target")}
    assert run.deliveries.count() == 12
    assert {d.detail for d in run.deliveries.all()} == {refusal("127.0.0.1", "a loopback address")}
    assert run.state == Run.State.COMPLETE  # every slice was tried: a refused target is not a provider outage
    assert not Suppression.objects.exists()  # nothing to do with the recipients


@pytest.mark.django_db(transaction=True)
def test_with_the_setting_on_the_same_campaign_reaches_the_loopback_receiver(personas, redis, provider):
    run = send_webhook_campaign(personas, f"{provider.url}/in", people=12)

    assert len(provider.requests) == 12
    assert {d.status for d in run.deliveries.all()} == {Delivery.Status.SENT}
    assert run.state == Run.State.COMPLETE


def test_the_sms_adapter_refuses_its_provider_on_loopback(open_adapter, provider, private_networks_refused):
    texts = open_adapter(
        "sms", base_url=provider.url, account_sid="AC1", auth_token="sms-token-0a1b2c3d", from_number="+15559990000"
    )

    [result] = texts.send([OutboundMessage(delivery_id=1, to="+15551230000", text="Hi")])

    assert provider.requests == []
    assert (result.outcome, result.reason) == (Outcome.PERMANENT, "forbidden_target")
    assert result.detail.startswith("refused: sms target 127.0.0.1 is a loopback address")


def test_the_push_adapter_refuses_a_token_endpoint_on_loopback(open_adapter, provider, private_networks_refused):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    account = {
        "client_email": "sender@demo-shop.iam.gserviceaccount.com",
        "private_key": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "token_uri": f"{provider.url}/token",
    }
    pushes = open_adapter("push", project_id="demo-shop", service_account_json=json.dumps(account))

    results = pushes.send([OutboundMessage(delivery_id=n, to=f"device-token-{n}", text="Hi") for n in (1, 2)])

    assert provider.requests == []
    assert {(r.outcome, r.reason) for r in results} == {(Outcome.PERMANENT, "forbidden_target")}
    assert results[0].detail.startswith("token endpoint: refused: push target 127.0.0.1 is a loopback address")


# Saving a configuration ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("http://127.0.0.1:8080/hook", "127.0.0.1, a loopback address"),
        ("http://10.0.0.1/hook", "10.0.0.1, a private address"),
        ("http://192.168.1.20/hook", "192.168.1.20, a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a link-local address"),
        ("http://[::ffff:127.0.0.1]/hook", "::ffff:127.0.0.1, a loopback address"),
        ("http://[fc00::1]/hook", "fc00::1, a private address"),
        ("http://localhost:8000/hook", "localhost, a loopback address"),
        ("http://2130706433/hook", "127.0.0.1, a loopback address"),
    ],
)
def test_a_webhook_url_on_a_private_network_is_refused_with_a_field_error(
    client, personas, private_networks_refused, url, named
):
    client.force_login(personas["ada"])

    response = client.post(create_url("webhook"), post_data("webhook", name="Hook", url=url, signing_secret=SECRET))

    assert response.status_code == 200
    assert response.context["form"].errors["url"] == [
        f"Points at {named}: requests to private networks are refused (set {SETTING}=1 to allow)."
    ]
    assert not ChannelConfiguration.objects.exists()


def test_an_sms_base_url_on_a_private_network_is_refused_with_a_field_error(client, personas, private_networks_refused):
    client.force_login(personas["ada"])
    data = post_data(
        "sms",
        name="Texts",
        base_url="http://10.0.0.7:8080",
        account_sid="AC1",
        auth_token="sms-token-0a1b2c3d",
        from_number="+15559990000",
    )

    response = client.post(create_url("sms"), data)

    assert "Points at 10.0.0.7, a private address" in response.context["form"].errors["base_url"][0]
    assert not ChannelConfiguration.objects.exists()


def test_with_the_setting_on_a_private_webhook_url_is_saved(client, personas):
    client.force_login(personas["ada"])

    client.post(
        create_url("webhook"), post_data("webhook", name="Hook", url="http://10.0.0.1/hook", signing_secret=SECRET)
    )

    assert ChannelConfiguration.objects.get(name="Hook").settings["url"] == "http://10.0.0.1/hook"


def test_a_public_webhook_url_is_saved_with_the_setting_off(client, personas, private_networks_refused):
    client.force_login(personas["ada"])

    client.post(
        create_url("webhook"),
        post_data("webhook", name="Hook", url="https://hooks.example.com/in", signing_secret=SECRET),
    )

    assert ChannelConfiguration.objects.get(name="Hook").settings["url"] == "https://hooks.example.com/in"


# The rule --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("64:ff9b::a9fe:a9fe", "a link-local address"),  # NAT64 spelling of 169.254.169.254
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("10.0.0.1", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.0.1", "a private address"),
        ("fc00::1", "a private address"),
        ("fec0::1", "a site-local address"),  # deprecated, still routed in some networks; Python calls it global
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("192.0.2.1", "a private address"),  # documentation range
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
        ("::ffff:93.184.215.14", None),
        ("64:ff9b::5db8:d70e", None),  # NAT64 spelling of 93.184.215.14
    ],
)
def test_only_public_addresses_may_be_reached(address, kind):
    assert address_refusal(ipaddress.ip_address(address)) == kind


class TlsListener:
    """A TLS server on loopback with a certificate for secure.example.net that no authority signed: it records
    the name each client asks for (SNI) and answers nothing more."""

    def __init__(self, folder):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "secure.example.net")])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("secure.example.net")]), critical=False)
            .sign(key, hashes.SHA256())
        )
        (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        (folder / "key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
        self.context.sni_callback = lambda sock, server_name, context: self.server_names.append(server_name)
        self.server_names: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(60)  # a client that never comes ends the test instead of hanging it
        self.port = self.listener.getsockname()[1]

    def start(self):
        self._thread = threading.Thread(target=self._serve_one, daemon=True)
        self._thread.start()
        return self

    def _serve_one(self):
        with self.listener:
            connection, _ = self.listener.accept()
            with connection:
                try:
                    self.context.wrap_socket(connection, server_side=True).close()
                except (ssl.SSLError, OSError):
                    pass  # the client refused the certificate

    def stop(self):
        self._thread.join()
