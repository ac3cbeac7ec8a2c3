"""Email delivery: SMTP when SMTP_URL is set, else the outbox page.

SMTP_URL: smtp://user:password@host:port (plain or STARTTLS when offered),
smtps://... for TLS from the start. Every email is also kept in
`outbox_email`, so the app is usable out of the box and sends are auditable.

`send_email` talks to the SMTP server before it returns; `queue_email` stores
the email and leaves its delivery to a worker job (`deliver_queued`), for a
request that must answer at once and the same way whatever the email does
(a forgotten password's link).
"""

import logging
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

from rq import Retry

from . import queue, settings
from .models import OutboxEmail

log = logging.getLogger(__name__)

# A queued email's delivery is tried again this many seconds after a failure (SMTP down).
RETRY_INTERVALS = [30, 120, 600]


def send_email(to, subject, body, *, smtp_url=None):
    """Send (or, without SMTP, store) one plain-text email; returns the outbox row."""
    return _deliver(OutboxEmail.create(to=to, subject=subject, body=body), smtp_url)


def queue_email(to, subject, body):
    """Store one plain-text email and queue its delivery over SMTP (without SMTP
    the outbox row is all there is); returns the outbox row. With the queue
    server down the email is sent now rather than lost."""
    row = OutboxEmail.create(to=to, subject=subject, body=body)
    if not settings.SMTP_URL:
        return row
    try:
        queue.enqueue_once(
            deliver_queued,
            row.id,
            job_id=queue.job_id("email", row.id),
            retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
        )
    except Exception:  # noqa: BLE001 - no queue server: deliver in the request rather than never
        log.exception("email %s could not be queued; sending it now", row.id)
        _deliver(row, None)
    return row


def deliver_queued(outbox_id):
    """The job: deliver the stored email `outbox_id` unless it went out already
    (idempotent). Raises when SMTP refuses or is down, so that RQ tries again."""
    row = OutboxEmail.get_or_none(OutboxEmail.id == outbox_id)
    if row is None or row.delivered:
        return
    _deliver(row, None)
    if not row.delivered and row.error:
        raise RuntimeError(row.error)


def _deliver(row, smtp_url):
    smtp_url = settings.SMTP_URL if smtp_url is None else smtp_url
    if not smtp_url:
        return row
    message = EmailMessage()
    message["From"] = settings.MAIL_FROM
    message["To"] = row.to
    message["Subject"] = row.subject
    message.set_content(row.body)
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
        row.delivered, row.error = True, None
    row.save()
    return row
