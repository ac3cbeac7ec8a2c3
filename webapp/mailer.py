"""Email delivery: SMTP when SMTP_URL is set, else the outbox page.

SMTP_URL: smtp://user:password@host:port (plain or STARTTLS when offered),
smtps://... for TLS from the start. Every email is also kept in
`outbox_email`, so the app is usable out of the box and sends are auditable.
"""

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

from . import settings
from .models import OutboxEmail


def send_email(to, subject, body, *, smtp_url=None):
    """Send (or, without SMTP, store) one plain-text email; returns the outbox row."""
    smtp_url = settings.SMTP_URL if smtp_url is None else smtp_url
    row = OutboxEmail.create(to=to, subject=subject, body=body)
    if not smtp_url:
        return row
    message = EmailMessage()
    message["From"] = settings.MAIL_FROM
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    url = urlparse(smtp_url)
    try:
        if url.scheme == "smtps":
            client = smtplib.SMTP_SSL(url.hostname, url.port or 465, timeout=30, context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(url.hostname, url.port or 25, timeout=30)
        with client:
            if url.scheme == "smtp" and client.has_extn("starttls"):
                client.starttls(context=ssl.create_default_context())
            if url.username:
                client.login(unquote(url.username), unquote(url.password or ""))
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        row.error = f"{type(exc).__name__}: {exc}"
    else:
        row.delivered = True
    row.save()
    return row
