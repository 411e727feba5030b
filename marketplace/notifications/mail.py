"""Outgoing e-mail.

Without ``MAIL_URL`` a message is printed to the console and written to ``instance/mail/`` as an
``.eml`` file, so the demo's mail can be read without a mail server.
"""

import smtplib
import sys
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app, render_template


def build_message(to: str, subject: str, template: str, **context) -> EmailMessage:
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="marketplace.local")
    message.set_content(render_template(f"email/{template}.txt", **context))
    return message


def send(to: str, subject: str, template: str, **context) -> EmailMessage:
    message = build_message(to, subject, template, **context)
    mail_url = current_app.config.get("MAIL_URL")
    if mail_url:
        _send_smtp(mail_url, message)
    else:
        _write_locally(message)
    sent = current_app.extensions.setdefault("sent_mail", [])
    if current_app.testing:
        sent.append(message)
    return message


def _write_locally(message: EmailMessage) -> None:
    folder = Path(current_app.config["INSTANCE_PATH"]) / "mail"
    folder.mkdir(parents=True, exist_ok=True)
    name = message["Message-ID"].strip("<>").replace("@", "_")
    (folder / f"{name}.eml").write_bytes(bytes(message))
    if not current_app.testing:
        print(
            f"--- mail to {message['To']}: {message['Subject']}\n{message.get_content()}",
            file=sys.stderr,
        )


def _send_smtp(mail_url: str, message: EmailMessage) -> None:
    parts = urlsplit(mail_url)
    options = parse_qs(parts.query)
    smtp_class = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    with smtp_class(parts.hostname or "127.0.0.1", parts.port or 25, timeout=30) as smtp:
        if options.get("starttls", ["0"])[0] == "1":
            smtp.starttls()
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        smtp.send_message(message)
