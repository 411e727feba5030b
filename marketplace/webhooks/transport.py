"""Where a webhook may be sent, and sending it: one POST, no redirects, a bounded wait and a
bounded answer.

A company types the URL, and the worker sends from inside our network, so an address is a way
in (server-side request forgery) unless it is checked. In production only ``https`` to public
addresses: the URL is refused when it names a private, loopback or link-local address, and at
every attempt the host name is resolved again, each address checked, and the connection made to
the address that was checked (a name that resolves to a public address when registered and a
private one later is refused then). In development and tests, ``http`` is allowed to loopback
addresses only (a receiver on one's own machine); ``https`` anywhere.
"""

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from marketplace.errors import ValidationError

MAX_URL_LENGTH = 2000
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 10
# How much of the receiver's answer the delivery log keeps.
RESPONSE_KEPT_BYTES = 2048
LOCAL_NAMES = ("localhost", "localhost.localdomain")


class RefusedAddress(Exception):
    """The URL's host resolves to an address webhooks may not reach."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str


@dataclass(frozen=True)
class Answer:
    """What one attempt got: a status and the start of the body, or an error without a status."""

    status: int | None
    body: str
    duration_ms: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _loopback_name(host: str) -> bool:
    address = _literal_address(host)
    return address.is_loopback if address is not None else host.lower() in LOCAL_NAMES


def target_of(url: str, *, production: bool) -> Target:
    """The parts of an endpoint URL the company may register; a ``ValidationError`` says why not."""
    if not url or len(url) > MAX_URL_LENGTH:
        raise ValidationError(f"Give a URL of at most {MAX_URL_LENGTH} characters.", code="invalid_url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError("That is not a URL.", code="invalid_url") from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise ValidationError("Give an https:// URL.", code="invalid_url")
    if parts.username or parts.password:
        raise ValidationError("A webhook URL may not carry a user name or password.", code="invalid_url")
    if parts.fragment:
        raise ValidationError("A webhook URL may not have a #fragment.", code="invalid_url")
    if parts.scheme == "http" and (production or not _loopback_name(host)):
        message = "Webhooks are sent over https only" + (
            "." if production else " (http to this machine in development)."
        )
        raise ValidationError(message, code="insecure_url")
    if production:
        address = _literal_address(host)
        if _loopback_name(host) or (address is not None and not _public(address)) or host.endswith(".localhost"):
            raise ValidationError("Webhooks are sent to public addresses only.", code="private_address")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def resolve(target: Target, *, production: bool) -> list[str]:
    """The addresses to connect to, checked now: every address the name resolves to must be public
    in production (a name with one private address is refused whole), loopback for ``http``."""
    try:
        found = socket.getaddrinfo(target.host.strip("[]"), target.port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise RefusedAddress(f"{target.host} does not resolve: {error}") from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in found]
    if not addresses:
        raise RefusedAddress(f"{target.host} does not resolve")
    if production and not all(_public(address) for address in addresses):
        raise RefusedAddress(f"{target.host} resolves to a private address; webhooks go to public addresses only")
    if target.scheme == "http" and not all(address.is_loopback for address in addresses):
        raise RefusedAddress(f"{target.host} is not this machine; http is for loopback addresses only")
    return list(dict.fromkeys(str(address) for address in addresses))


def _connect(addresses: list[str], port: int) -> socket.socket:
    """A socket to the first of the checked addresses that answers."""
    failure: OSError = OSError("no address to connect to")
    for address in addresses:
        try:
            sock = socket.create_connection((address, port), CONNECT_TIMEOUT_SECONDS)
        except OSError as error:
            failure = error
            continue
        sock.settimeout(READ_TIMEOUT_SECONDS)
        return sock
    raise failure


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to the addresses that were checked, whatever the name resolves to now."""

    def __init__(self, target: Target, addresses: list[str]):
        super().__init__(target.host, target.port, timeout=READ_TIMEOUT_SECONDS)
        self.addresses = addresses

    def connect(self) -> None:
        self.sock = _connect(self.addresses, self.port)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to the checked addresses; the certificate is checked against the name
    (the system's trusted authorities, or those ``SSL_CERT_FILE`` names)."""

    def __init__(self, target: Target, addresses: list[str]):
        super().__init__(target.host, target.port, timeout=READ_TIMEOUT_SECONDS, context=ssl.create_default_context())
        self.addresses = addresses

    def connect(self) -> None:
        sock = _connect(self.addresses, self.port)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(url: str, headers: dict[str, str], body: bytes, *, production: bool) -> Answer:
    """POST ``body`` to ``url``; never raises for what the network or the receiver does. A
    redirect is an answer like any other non-2xx: it is not followed."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = target_of(url, production=production)
        addresses = resolve(target, production=production)
    except (ValidationError, RefusedAddress) as error:
        return Answer(None, "", elapsed(), str(error))
    connection = (_PinnedHTTPS if target.scheme == "https" else _PinnedHTTP)(target, addresses)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        kept = response.read(RESPONSE_KEPT_BYTES)
        return Answer(response.status, kept.decode("utf-8", errors="replace"), elapsed())
    except (OSError, http.client.HTTPException) as error:
        return Answer(None, "", elapsed(), f"{type(error).__name__}: {error}")
    finally:
        connection.close()
