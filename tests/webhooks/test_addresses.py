"""Where webhooks may go: https to public addresses in production, checked again at each
attempt against what the name resolves to then; http to loopback only outside production."""

import pytest

from marketplace.errors import ValidationError
from marketplace.webhooks import transport


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
