"""Composing and delivering e-mail: the outbox handler for ``email.send`` jobs.

Without ``MAIL_URL`` a message is printed to the console and written to ``instance/mail/`` as an
``.eml`` file (readable at ``/dev/mail`` with ``APP_ENV=development``). Links are built from
``BASE_URL``; unsubscribe links are signed with ``SECRET_KEY``, which the web process must share.
"""

import base64
import hashlib
import smtplib
import sys
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app, render_template
from itsdangerous import URLSafeSerializer
from jinja2 import TemplateNotFound

from marketplace import text
from marketplace.config import current_settings
from marketplace.jobs.service import PermanentFailure, RetryLater
from marketplace.notifications.kinds import KINDS


def unsubscribe_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_settings().secret_key, salt="unsubscribe")


def _link_box() -> Fernet:
    """Encryption for links that carry a secret (a password reset, an invitation, an address
    confirmation): the outbox keeps the e-mail job until it is sent, and its payload must not hold
    a working secret that the tables keep only as hashes. The key comes from SECRET_KEY, which
    every process shares."""
    digest = hashlib.sha256(b"sealed-mail-links\0" + current_settings().secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal_link(link: str) -> str:
    return _link_box().encrypt(link.encode()).decode()


def unseal_link(sealed: str) -> str:
    try:
        return _link_box().decrypt(sealed.encode()).decode()
    except InvalidToken:
        # SECRET_KEY changed since the job was written: the link cannot be recovered. The
        # person asks for a new one; an admin sees the parked job.
        raise PermanentFailure("the sealed link was written under another SECRET_KEY") from None


def _render(kind: str, extension: str, context: dict) -> str:
    try:
        return render_template(f"email/{kind}.{extension}", **context)
    except TemplateNotFound:
        return render_template(f"email/_generic.{extension}", **context)


def compose(payload: dict, user_id: int | None) -> EmailMessage:
    settings = current_settings()
    base_url = settings.base_url.rstrip("/")
    link = unseal_link(payload["sealed_link"]) if payload.get("sealed_link") else payload["link"]
    context = dict(payload, link=link, url=base_url + link if link else base_url, base_url=base_url)
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = payload["to"]
    # A title stored before line breaks were refused must not become a second header line.
    message["Subject"] = text.flattened(payload["title"])
    message["Message-ID"] = payload["message_id"]
    message["Date"] = formatdate(usegmt=True)
    kind = payload["kind"]
    if user_id is not None and kind in KINDS and not KINDS[kind].mandatory:
        token = unsubscribe_serializer().dumps({"u": user_id, "k": kind})
        message["List-Unsubscribe"] = f"<{base_url}/notifications/unsubscribe/{token}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        context["unsubscribe_url"] = f"{base_url}/notifications/unsubscribe/{token}"
    message.set_content(_render(kind, "txt", context))
    message.add_alternative(_render(kind, "html", context), subtype="html")
    return message


def send_email_job(session, job) -> dict:
    """Everything the message needs is in the payload: no database transaction is open while
    the SMTP server is slow (on SQLite an open one would hold up every writer)."""
    payload = job.payload
    deliver(compose(payload, payload.get("user_id")))
    return {"message_id": payload["message_id"]}


def deliver(message: EmailMessage) -> None:
    mail_url = current_settings().mail_url
    if mail_url:
        _send_smtp(mail_url, message)
    else:
        _write_locally(message)
    if current_app.testing:
        current_app.extensions.setdefault("sent_mail", []).append(message)


def mail_folder() -> Path:
    return Path(current_settings().instance_path) / "mail"


def plain_text(message: EmailMessage) -> str:
    """The message's plain-text body (every message we compose has one)."""
    body = message.get_body(("plain",))
    return body.get_content() if body is not None else ""


def _write_locally(message: EmailMessage) -> None:
    folder = mail_folder()
    folder.mkdir(parents=True, exist_ok=True)
    name = message["Message-ID"].strip("<>").replace("@", "_")
    (folder / f"{name}.eml").write_bytes(bytes(message))
    if not current_app.testing:
        print(f"--- mail to {message['To']}: {message['Subject']}\n{plain_text(message)}", file=sys.stderr)


def _send_smtp(mail_url: str, message: EmailMessage) -> None:
    """Send through SMTP; a 5xx answer cannot improve with retries, anything else can."""
    parts = urlsplit(mail_url)
    options = parse_qs(parts.query)
    smtp_class = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    try:
        with smtp_class(parts.hostname or "127.0.0.1", parts.port or 25, timeout=30) as smtp:
            if options.get("starttls", ["0"])[0] == "1":
                smtp.starttls()
            if parts.username:
                smtp.login(unquote(parts.username), unquote(parts.password or ""))
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        if all(code >= 500 for code in codes):
            raise PermanentFailure(f"recipient refused: {error.recipients}") from error
        raise RetryLater(f"recipient deferred: {error.recipients}") from error
    except smtplib.SMTPResponseException as error:
        if error.smtp_code >= 500:
            raise PermanentFailure(f"SMTP {error.smtp_code}: {error.smtp_error!r}") from error
        raise RetryLater(f"SMTP {error.smtp_code}: {error.smtp_error!r}") from error
    except (OSError, smtplib.SMTPException) as error:
        raise RetryLater(f"SMTP server unavailable: {error}") from error
