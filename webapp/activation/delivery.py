"""Delivery: email over SMTP, SMS through an HTTP gateway, webhooks.

Email (SMTP_URL set): `SmtpGroup` keeps SMTP_CONNECTIONS connections open for
as long as a sender runs (a connection that fails is dropped and opened again
for the next message on its slot) and moves a group of messages through them
in lockstep, one message per connection: MAIL, RCPT and DATA go out on every
connection (in one write where the server offers PIPELINING, RFC 2920: one
round trip instead of three), then the content, then the caller records the
group as sent in the database (`commit`, one transaction for the group), and
only then does each connection get the final "." that makes the server accept
its message. SMTP has one transaction at a time per connection, so a group
is as large as the connections: that is what lets one commit cover many
messages while keeping the "." after it.

Exactly once: a worker killed before that commit leaves the server with
unfinished messages, which it discards when the connection drops: they are
sent again later, once. Killed after the commit, the "."s are already in the
socket buffers (the kernel still sends a killed process's buffers) or the
loss window is the few microseconds of writing five bytes: a message is never
sent twice (see webapp.activation.mailings). A connection lost before the "."
is a retry on a new connection; lost after it (the server's reply never
came), the message counts as sent, since the server had all of it. The
sockets are TCP_NODELAY: the content and the "." are two small writes with no
reply between them, and Nagle's algorithm would hold the "." until the
server's delayed acknowledgement (tens of milliseconds a group).

Without SMTP_URL, mailing emails go to the outbox (`outbox_email`) and SMS
without SMS_GATEWAY_URL to `outbox_sms`: `make run` works out of the box.

SMS: one POST per message to SMS_GATEWAY_URL with the JSON body made from
SMS_BODY_TEMPLATE, `Authorization: Bearer SMS_GATEWAY_TOKEN` and an
`Idempotency-Key` stable per message, so a gateway that honours it drops a
repeat after a crash between its answer and our record. `SmsGateway` keeps
its HTTP/1.1 connections alive from one request to the next and has at most
SMS_CONCURRENCY requests under way, each on its own connection.

Webhooks: a JSON POST signed with HMAC-SHA256 over "<timestamp>.<body>"
(header `X-Segmento-Signature: t=<timestamp>,v1=<hex>`), with the delivery id
in `X-Segmento-Delivery` for receivers to drop repeats.
Unless WEBHOOK_ALLOW_PRIVATE is on, a webhook connects only to public
addresses: the check is made on the address actually connected to (after DNS,
and again on every redirect), so a name that resolves to 127.0.0.1 or a
redirect to 169.254.169.254 is refused too.
"""

import binascii
import concurrent.futures
import email.header
import email.utils
import functools
import hashlib
import hmac
import http.client
import ipaddress
import json
import re
import smtplib
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import unquote, urlparse

from jinja2.sandbox import ImmutableSandboxedEnvironment

from .. import settings
from ..i18n import _

SMTP_TIMEOUT = 30
HTTP_TIMEOUT = 15
USER_AGENT = "Segmento"


# --- email -------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def sender_address(mail_from=None):
    return email.utils.parseaddr(mail_from or settings.MAIL_FROM)[1] or "segmento@localhost"


def message_id(mailing_id, recipient_id, mail_from=None):
    """A Message-ID stable per recipient: a repeat is recognisable as one."""
    domain = sender_address(mail_from).rpartition("@")[2] or "localhost"
    return f"<segmento.{mailing_id}.{recipient_id}@{domain}>"


def _header(value):
    """A header value: as is when ASCII, else RFC 2047 encoded words."""
    value = " ".join(str(value).split())
    if value.isascii():
        return value
    return email.header.Header(value, "utf-8").encode()


@functools.lru_cache(maxsize=8)
def _from_header(mail_from):
    name, address = email.utils.parseaddr(mail_from)
    if not name:
        return address or mail_from
    return email.utils.formataddr((name, address), charset="utf-8")


def _qp(text):
    data = binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8"), istext=True)
    return data.replace(b"\n", b"\r\n")


def build_email(to, subject, html_body, text_body, *, msg_id=None, unsubscribe=None, one_click=None, mail_from=None):
    """The message as bytes with CRLF line ends: multipart/alternative text + HTML.

    Written directly rather than with email.message.EmailMessage, whose
    header folding costs milliseconds a message; parts are quoted-printable.
    """
    mail_from = mail_from or settings.MAIL_FROM
    msg_id = msg_id or email.utils.make_msgid(domain=sender_address(mail_from).rpartition("@")[2])
    headers = [
        f"From: {_from_header(mail_from)}",
        f"To: {_header(to)}",
        f"Subject: {_header(subject)}",
        f"Date: {email.utils.formatdate(localtime=False)}",
        f"Message-ID: {msg_id}",
        "MIME-Version: 1.0",
    ]
    if unsubscribe:
        headers.append(f"List-Unsubscribe: <{one_click or unsubscribe}>")
        if one_click:
            headers.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    part = b"Content-Type: text/%s; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    if html_body is None:
        head = "\r\n".join(headers).encode("ascii") + b"\r\n"
        return head + part % b"plain" + _qp(text_body) + b"\r\n"
    boundary = "=_segmento_" + hashlib.sha1(msg_id.encode()).hexdigest()[:24]
    headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    b = boundary.encode("ascii")
    return b"".join(
        [
            "\r\n".join(headers).encode("ascii"),
            b"\r\n\r\n",
            b"--",
            b,
            b"\r\n",
            part % b"plain",
            _qp(text_body),
            b"\r\n",
            b"--",
            b,
            b"\r\n",
            part % b"html",
            _qp(html_body),
            b"\r\n",
            b"--",
            b,
            b"--\r\n",
        ]
    )


_DOT = re.compile(rb"(?m)^\.")
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\\\"]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$")


def usable_address(address):
    """An address we can put in RCPT TO (ASCII, one @, no spaces or brackets)."""
    return bool(address) and address.isascii() and len(address) <= 254 and bool(_ADDRESS.match(address))


def _data_bytes(raw):
    data = _DOT.sub(b"..", raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    return data if data.endswith(b"\r\n") else data + b"\r\n"


class SmtpUnavailable(Exception):
    """No connection to the SMTP server could be made."""


def _connect(url):
    parsed = urlparse(url)
    if parsed.scheme == "smtps":
        client = smtplib.SMTP_SSL(
            parsed.hostname, parsed.port or 465, timeout=SMTP_TIMEOUT, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(parsed.hostname, parsed.port or 25, timeout=SMTP_TIMEOUT)
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.ehlo()
    if parsed.scheme == "smtp" and client.has_extn("starttls"):
        client.starttls(context=ssl.create_default_context())
        client.ehlo()
    if parsed.username:
        client.login(unquote(parsed.username), unquote(parsed.password or ""))
    return client


def _error(exc):
    return f"{type(exc).__name__}: {exc}"


# The replies that let a message go on: to MAIL, to RCPT (251: the server forwards it)
# and to DATA (354: send the content).
MAIL_OK, RCPT_OK, DATA_OK = (250,), (250, 251), (354,)


def _reply_text(code, reply):
    return f"{code} {reply.decode('utf-8', 'replace')}"


def _refusal(code, reply, accept):
    """(outcome, detail) of a reply to a command not in `accept`, else None: a
    permanent refusal (5xx) fails the message, any other is tried again."""
    if code in accept:
        return None
    return ("failed" if 500 <= code < 600 else "retry"), _reply_text(code, reply)


class _Slot:
    __slots__ = ("index", "key", "to", "data", "outcome", "detail")

    def __init__(self, index, key, to, data):
        self.index, self.key, self.to, self.data = index, key, to, data
        self.outcome = self.detail = None


class SmtpGroup:
    """Up to `size` SMTP connections, used in lockstep (see the module docstring)."""

    def __init__(self, url=None, size=None, mail_from=None):
        self.url = url or settings.SMTP_URL
        self.size = max(1, size or settings.SMTP_CONNECTIONS)
        self.envelope_from = sender_address(mail_from)
        self.conns = [None] * self.size

    def close(self):
        for i, conn in enumerate(self.conns):
            if conn is not None:
                try:
                    conn.quit()
                except (OSError, smtplib.SMTPException):
                    conn.close()
                self.conns[i] = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _drop(self, index):
        conn = self.conns[index]
        self.conns[index] = None
        if conn is not None:
            conn.close()  # without the final ".": the server discards an open message

    def deliver(self, messages, commit):
        """Send up to `size` messages [(key, to, raw bytes)].

        `commit(keys)` is called with the keys whose content the servers hold
        and returns the keys that may be completed (recorded as sent).
        Returns {key: (outcome, detail)}, outcome one of:
          sent     the server accepted it
          failed   refused for good (5xx) before `commit`
          refused  refused at the end, after `commit` recorded it as sent
          retry    not sent (a temporary refusal or a lost connection): try again
          dropped  not allowed by `commit`: not sent
        Raises SmtpUnavailable if no connection could be opened at all. Whatever
        `commit` raises passes through, the group's connections dropped: the
        servers discard its unfinished messages.
        """
        assert len(messages) <= self.size
        slots = [_Slot(i, key, to, raw) for i, (key, to, raw) in enumerate(messages)]
        try:
            return self._deliver(slots, commit)
        except BaseException:
            # Raised mid-exchange (most often by `commit`: the database went away): the connections
            # may be inside DATA, where a QUIT from `close` would be read as content and its reply
            # waited for until SMTP_TIMEOUT, connection after connection. They are dropped instead,
            # and the servers discard the unfinished messages.
            for slot in slots:
                self._drop(slot.index)
            raise

    def _deliver(self, slots, commit):
        error = None
        for slot in slots:
            if self.conns[slot.index] is None:
                try:
                    self.conns[slot.index] = _connect(self.url)
                except (OSError, smtplib.SMTPException) as exc:
                    error = _error(exc)
                    slot.outcome, slot.detail = "retry", error
        live = [s for s in slots if s.outcome is None]
        if slots and not live:
            raise SmtpUnavailable(error)
        for slot in live:
            if not usable_address(slot.to):
                slot.outcome, slot.detail = "failed", _("The address cannot be used: %(a)s", a=slot.to)
        live = [s for s in live if s.outcome is None]

        def retry(slot, exc):
            slot.outcome, slot.detail = "retry", _error(exc)
            self._drop(slot.index)

        def phase(send, accept):
            nonlocal live
            self._send(live, send, retry)
            for slot, code, reply in self._replies(live, retry):
                if refusal := _refusal(code, reply, accept):
                    slot.outcome, slot.detail = refusal
                    self._reset(slot.index)
            live = [s for s in live if s.outcome is None]

        def mail(conn, slot):
            conn.putcmd("mail", f"FROM:<{self.envelope_from}>")

        def rcpt(conn, slot):
            conn.putcmd("rcpt", f"TO:<{slot.to}>")

        def data(conn, slot):
            conn.putcmd("data")

        # Servers that offer PIPELINING get the envelope in one round trip, the others a command at a time.
        pipelined = [s for s in live if self.conns[s.index].has_extn("pipelining")]
        self._envelope_pipelined(pipelined, retry)
        ready = [s for s in pipelined if s.outcome is None]
        live = [s for s in live if s not in pipelined]
        phase(mail, MAIL_OK)
        phase(rcpt, RCPT_OK)
        phase(data, DATA_OK)
        live = ready + live
        self._send(live, lambda conn, slot: conn.send(_data_bytes(slot.data)), retry)
        live = [s for s in live if s.outcome is None]
        allowed = set(commit([s.key for s in live])) if live else set()
        for slot in live:
            if slot.key not in allowed:
                slot.outcome = "dropped"
                self._drop(slot.index)
        live = [s for s in live if s.outcome is None]

        def lost_at_end(slot, exc):
            slot.outcome, slot.detail = "refused", _("Connection lost at the end of the message: %(e)s", e=_error(exc))
            self._drop(slot.index)

        def lost_after_end(slot, exc):
            slot.outcome = "sent"  # the "." went out; the server most likely has the message
            self._drop(slot.index)

        self._send(live, lambda conn, slot: conn.send(b".\r\n"), lost_at_end)
        for slot, code, reply in self._replies(live, lost_after_end):
            if code == 250:
                slot.outcome = "sent"
            else:
                slot.outcome, slot.detail = "refused", _reply_text(code, reply)
        return {s.key: (s.outcome, s.detail) for s in slots}

    def _envelope_pipelined(self, slots, retry):
        """MAIL, RCPT and DATA in one write per connection (RFC 2920), then
        their three replies: one round trip instead of three."""
        self._send(
            slots,
            lambda conn, slot: conn.send(
                f"MAIL FROM:<{self.envelope_from}>\r\nRCPT TO:<{slot.to}>\r\nDATA\r\n".encode("ascii")
            ),
            retry,
        )
        for slot in slots:
            if slot.outcome is not None:
                continue
            conn, replies = self.conns[slot.index], []
            try:
                for _n in range(3):
                    replies.append(conn.getreply())
            except (OSError, smtplib.SMTPException) as exc:
                retry(slot, exc)
                continue
            refusals = (
                _refusal(code, reply, accept) for (code, reply), accept in zip(replies, (MAIL_OK, RCPT_OK, DATA_OK))
            )
            refusal = next((r for r in refusals if r), None)
            if refusal is None:
                continue
            slot.outcome, slot.detail = refusal
            if replies[2][0] in DATA_OK:
                self._drop(slot.index)  # DATA open despite the refusal: closed without ".", nothing is kept
            else:
                self._reset(slot.index)

    def _send(self, live, send, lost):
        """`send(conn, slot)` on the connection of each slot; `lost(slot, exc)` when that connection fails."""
        for slot in live:
            try:
                send(self.conns[slot.index], slot)
            except (OSError, smtplib.SMTPException) as exc:
                lost(slot, exc)

    def _replies(self, live, lost):
        """(slot, code, reply) of each slot still without an outcome, its server's reply read;
        `lost(slot, exc)` instead when its connection fails."""
        for slot in live:
            if slot.outcome is not None:
                continue
            try:
                code, reply = self.conns[slot.index].getreply()
            except (OSError, smtplib.SMTPException) as exc:
                lost(slot, exc)
                continue
            yield slot, code, reply

    def _reset(self, index):
        try:
            self.conns[index].rset()
        except (OSError, smtplib.SMTPException):
            self._drop(index)


def send_one_email(to, subject, html_body, text_body, **headers):
    """Send one email now (test sends): over SMTP, or to the outbox. Returns (ok, detail)."""
    raw = build_email(to, subject, html_body, text_body, **headers)
    if not settings.SMTP_URL:
        from ..models import OutboxEmail

        OutboxEmail.create(to=to, subject=subject, body=text_body)
        return True, _("Put in the outbox (no SMTP server is configured).")
    with SmtpGroup(size=1) as group:
        try:
            outcome, detail = group.deliver([(0, to, raw)], lambda keys: keys)[0]
        except SmtpUnavailable as exc:
            return False, str(exc)
    return outcome == "sent", detail


# --- SMS ---------------------------------------------------------------------


def _json_text(value):
    return "" if value is None else json.dumps(str(value), ensure_ascii=False)[1:-1]


_SMS_ENV = ImmutableSandboxedEnvironment(autoescape=False, finalize=_json_text)


def sms_body(phone, text, template=None):
    """The gateway's JSON body (bytes); ValueError if the template does not give JSON."""
    body = _SMS_ENV.from_string(template or settings.SMS_BODY_TEMPLATE).render(phone=phone, text=text)
    json.loads(body)
    return body.encode("utf-8")


class SmsGateway:
    """POSTs to SMS_GATEWAY_URL over kept-alive HTTP connections, at most
    `concurrency` (SMS_CONCURRENCY) requests at once, each on its own
    connection; a connection is used again by the next request (see the
    module docstring). Close it (or use `with`) to end its threads and
    connections."""

    def __init__(self, url=None, token=None, concurrency=None):
        parsed = urlparse(url or settings.SMS_GATEWAY_URL)
        self.https = parsed.scheme == "https"
        self.host, self.port = parsed.hostname, parsed.port
        self.target = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
        token = settings.SMS_GATEWAY_TOKEN if token is None else token
        self.headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **({"Authorization": f"Bearer {token}"} if token else {}),
        }
        self.concurrency = max(1, concurrency or settings.SMS_CONCURRENCY)
        self._idle = []  # connections kept alive, not in use
        self._lock = threading.Lock()
        self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def send(self, messages):
        """Send [(key, phone, text)], up to `concurrency` at once.
        Returns {key: (outcome, detail)}: sent | failed | retry."""
        if len(messages) <= 1 or self.concurrency == 1:
            return {key: self._send(phone, text, key) for key, phone, text in messages}
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(self.concurrency, thread_name_prefix="sms")
        results = self._pool.map(lambda m: self._send(m[1], m[2], m[0]), messages)
        return {key: result for (key, _phone, _text), result in zip(messages, results)}

    def _send(self, phone, text, key):
        try:
            body = sms_body(phone, text)
        except ValueError as exc:
            return "failed", _("SMS_BODY_TEMPLATE does not make JSON: %(e)s", e=exc)
        status, detail = self._post(body, {**self.headers, "Idempotency-Key": str(key)})
        if status is None:
            return "retry", detail
        if 200 <= status < 300:
            return "sent", None
        return ("retry" if status >= 500 or status == 429 else "failed"), detail

    def _connection(self):
        """(a kept-alive connection or a new one, whether it was kept)."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        if self.https:
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=HTTP_TIMEOUT, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=HTTP_TIMEOUT)
        return conn, False

    def _post(self, body, headers):
        """(HTTP status or None, detail)."""
        while True:
            conn, kept = self._connection()
            try:
                conn.request("POST", self.target, body, headers)
                response = conn.getresponse()
                data = response.read(65536)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                conn.close()
                if kept:
                    # The gateway closed the connection while it was idle: once
                    # more on a new one (the Idempotency-Key covers the rare case
                    # where it had taken the request after all).
                    continue
                return None, _error(exc)
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                return None, _error(exc)
            if response.will_close or not response.isclosed():  # the server ends it, or a body left unread
                conn.close()
            else:
                with self._lock:
                    self._idle.append(conn)
            if 200 <= response.status < 300:
                return response.status, None
            return response.status, f"HTTP {response.status} {data[:300].decode('utf-8', 'replace')}".strip()


def send_sms(phone, text, key):
    """POST one SMS to the gateway (test sends). Returns (outcome, detail): sent | failed | retry."""
    with SmsGateway(concurrency=1) as gateway:
        return gateway.send([(key, phone, text)])[key]


def _post(request, opener=None):
    """(HTTP status or None, detail). AddressRefused passes through."""
    try:
        with (opener.open if opener else urllib.request.urlopen)(request, timeout=HTTP_TIMEOUT) as response:
            response.read(65536)
            return response.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code} {exc.read(300).decode('utf-8', 'replace')}".strip()
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, AddressRefused):
            raise exc.reason from None
        return None, f"{type(exc).__name__}: {exc.reason}"
    except AddressRefused:
        raise
    except (TimeoutError, OSError) as exc:
        return None, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"


# --- webhooks ----------------------------------------------------------------


def webhook_signature(secret, body, timestamp):
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def web_url(url):
    """Whether `url` is an absolute http(s) URL (no file:, no relative paths)."""
    parsed = urlparse(url or "")
    return parsed.scheme in ("http", "https") and bool(parsed.hostname)


class AddressRefused(OSError):
    """A webhook address on this machine or a private network (see WEBHOOK_ALLOW_PRIVATE)."""


def _internal(address):
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def _refused(host):
    return AddressRefused(
        _(
            "%(host)s is on this machine or a private network: webhooks may call "
            "it only when WEBHOOK_ALLOW_PRIVATE is set.",
            host=host,
        )
    )


def webhook_url_problem(url):
    """Why `url` cannot be a webhook address (a message), or None.

    Names are not resolved here (the worker's DNS decides at call time, and
    is checked then); literal internal addresses and localhost are refused.
    """
    if not web_url(url):
        return _("Enter an http:// or https:// address.")
    if settings.WEBHOOK_ALLOW_PRIVATE:
        return None
    host = urlparse(url).hostname.rstrip(".").lower()
    try:
        internal = _internal(host)
    except ValueError:
        internal = host == "localhost" or host.endswith(".localhost")
    return str(_refused(host)) if internal else None


def _public_connection(address, *args, **kwargs):
    """socket.create_connection that refuses internal peers (checked after connecting)."""
    sock = socket.create_connection(address, *args, **kwargs)
    if _internal(sock.getpeername()[0]):
        sock.close()
        raise _refused(address[0])
    return sock


class _PublicHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _public_connection


class _PublicHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _public_connection


class _PublicHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_PublicHTTPConnection, req)


class _PublicHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_PublicHTTPSConnection, req, context=self._context)


def post_webhook(url, body, secret, delivery_id):
    """POST a webhook. Returns (HTTP status or None, error text or None).

    Raises AddressRefused when the address is internal and not allowed
    (a permanent failure: retrying cannot help).
    """
    if not web_url(url):
        return None, _("Only http and https addresses can be called.")
    problem = webhook_url_problem(url)
    if problem:
        raise AddressRefused(problem)
    timestamp = int(time.time())
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Segmento-Delivery": str(delivery_id),
            "X-Segmento-Signature": webhook_signature(secret, body, timestamp),
        },
    )
    opener = (
        None if settings.WEBHOOK_ALLOW_PRIVATE else urllib.request.build_opener(_PublicHTTPHandler, _PublicHTTPSHandler)
    )
    status, detail = _post(request, opener)
    if status is not None and 200 <= status < 300:
        return status, None
    return status, detail or f"HTTP {status}"
