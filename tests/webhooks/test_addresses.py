"""Where webhooks may go: https (its certificate checked) to public addresses in production,
checked again at each attempt against what the name resolves to then; http to loopback only
outside production."""

import shutil
import ssl
import subprocess

import pytest

from marketplace.errors import ValidationError
from marketplace.webhooks import transport
from tests.webhooks.conftest import Receiver


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hooks",
        "https://127.0.0.1/hooks",
        "https://localhost/hooks",
        "https://10.1.2.3/hooks",
        "https://192.168.0.10/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hooks",
        "https://[::ffff:10.0.0.1]/hooks",
        "https://api.localhost/hooks",
    ],
)
def test_production_refuses_plain_http_and_private_addresses(url):
    with pytest.raises(ValidationError):
        transport.target_of(url, production=True)


def test_production_accepts_https_to_a_public_name():
    target = transport.target_of("https://hooks.example.com:8443/in?team=7", production=True)
    assert (target.host, target.port, target.path) == ("hooks.example.com", 8443, "/in?team=7")


def test_outside_production_http_goes_to_loopback_only():
    assert transport.target_of("http://127.0.0.1:5600/hooks", production=False).port == 5600
    assert transport.target_of("http://localhost/hooks", production=False).host == "localhost"
    with pytest.raises(ValidationError):
        transport.target_of("http://192.168.0.10/hooks", production=False)


def test_a_name_that_resolves_to_a_private_address_is_refused_at_delivery():
    """The check at each attempt: a name is resolved then, and a private answer refused, so a name
    that pointed elsewhere when registered cannot reach the inside later."""
    target = transport.Target("https", "localhost", 443, "/")
    with pytest.raises(transport.RefusedAddress, match="private address"):
        transport.resolve(target, production=True)
    answer = transport.post("https://localhost/hooks", {}, b"{}", production=True)
    assert answer.status is None and not answer.ok and answer.error


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for localhost, made on the spot by the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    receiver = Receiver(tls=context)
    yield cert, receiver
    receiver.stop()


def test_https_checks_the_certificate_against_the_name(certificate, monkeypatch):
    """A certificate no trusted authority signed is a failed attempt and nothing is sent; trusted,
    the same receiver gets the request over TLS at the name it was registered with."""
    cert, receiver = certificate
    url = receiver.url(base="https://localhost")

    refused = transport.post(url, {"webhook-id": "msg_1"}, b"{}", production=False)
    assert refused.status is None and "CERTIFICATE_VERIFY_FAILED" in refused.error
    assert receiver.requests == []

    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    answer = transport.post(url, {"webhook-id": "msg_1"}, b"{}", production=False)
    assert answer.ok, answer.error
    [request] = receiver.requests
    assert request.headers["host"] == f"localhost:{receiver.server.server_port}" and request.body == b"{}"
