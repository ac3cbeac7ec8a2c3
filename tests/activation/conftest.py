"""Real parts for the activation tests: an SMTP server (aiosmtpd) that counts
messages per recipient, a local HTTP server standing in for the SMS gateway
and webhook receivers, customers and segments."""

import asyncio
import collections
import email
import email.policy
import http.server
import json
import threading
import time

import pytest
from aiosmtpd.controller import Controller
from procs import free_port

from webapp import settings
from webapp.db import database
from webapp.models import Customer, Segment, SegmentMember, utcnow


class SmtpRecorder:
    """aiosmtpd handler: every accepted message, parsed, and a count per recipient."""

    def __init__(self):
        self.messages = []
        self.count = collections.Counter()
        self.delay = 0.0  # seconds before the reply to the final "."
        self.refuse = {}  # address -> (code, text) at RCPT time
        self.refuse_data = {}  # address -> reply at the end of DATA
        self.hold_after = None
        self.held = 0
        self.on_message = None  # called with the number of messages stored so far
        self.pipelining = True  # offer PIPELINING in the EHLO reply, as Postfix and Exim do
        self.connections = 0  # EHLOs: one per connection the client opened
        self.peers = collections.Counter()  # messages stored per client connection (its address and port)
        self.drop_at_rcpt = set()  # addresses whose connection is cut at RCPT (once each): nothing stored
        self.drop_after_data = (
            set()
        )  # addresses whose connection is cut after their message is stored, before the reply
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # aiosmtpd reads commands one after the other from the stream, so a
        # pipelined MAIL, RCPT, DATA is answered in order, as RFC 2920 asks.
        session.host_name = hostname
        self.connections += 1
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        if address in self.drop_at_rcpt:
            self.drop_at_rcpt.discard(address)
            server.transport.abort()
            return "421 Closing the connection"
        # `hold_after` messages stored: later transactions wait here (the test
        # kills the clients meanwhile) until `hold_after` is None again.
        if self.hold_after is not None and len(self.messages) >= self.hold_after:
            self.held += 1
            while self.hold_after is not None:
                await asyncio.sleep(0.02)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        for rcpt in envelope.rcpt_tos:
            if rcpt in self.refuse_data:
                return self.refuse_data[rcpt]
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        # Like an MTA: the message is stored when its final "." arrives, the
        # reply may come later (a client gone by then does not undo it).
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.count[rcpt] += 1
            self.messages.append((envelope.rcpt_tos[0], message))
            self.peers[session.peer] += 1
        if set(envelope.rcpt_tos) & self.drop_after_data:
            self.drop_after_data -= set(envelope.rcpt_tos)
            server.transport.abort()
            return "421 Closing the connection"
        if self.on_message:
            self.on_message(len(self.messages))
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 Message accepted"

    def to(self, address):
        return [m for rcpt, m in self.messages if rcpt == address]


@pytest.fixture
def smtp_server(monkeypatch):
    port = free_port()
    recorder = SmtpRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    recorder.url = f"smtp://127.0.0.1:{port}"
    monkeypatch.setattr(settings, "SMTP_URL", recorder.url)
    yield recorder
    controller.stop()


class HttpRecorder(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.requests = []
        self.statuses = []  # answers to give in turn; then 200
        self.delay = 0.0  # seconds each answer takes
        self.active = self.most_active = 0  # requests under way now, and at most
        self.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def wait_for(self, n, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.requests) >= n:
                return self.requests
            time.sleep(0.05)
        raise AssertionError(f"expected {n} requests, got {len(self.requests)}")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps a connection open for the next request unless the client closes it

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.active += 1
            self.server.most_active = max(self.server.most_active, self.server.active)
        time.sleep(self.server.delay)
        with self.server.lock:
            self.server.active -= 1
            status = self.server.statuses.pop(0) if self.server.statuses else 200
            self.server.requests.append(
                {
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": body,
                    "status": status,
                    "connection": self.client_address,
                }
            )
        payload = json.dumps({"ok": status < 400}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = HttpRecorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def no_delivery_settings(monkeypatch):
    """Out of the box: no SMTP server, no SMS gateway."""
    monkeypatch.setattr(settings, "SMTP_URL", "")
    monkeypatch.setattr(settings, "SMS_GATEWAY_URL", "")


def customer(ext, **fields):
    fields.setdefault("email", f"{ext}@example.com")
    fields.setdefault("email_consent", True)
    return Customer.create(external_id=ext, **fields)


def static_segment(code, customers):
    segment = Segment.create(
        code=code,
        name=code.title(),
        type="static",
        source="list",
        definition={"version": 1, "match": "all", "blocks": []},
    )
    for c in customers:
        SegmentMember.create(segment=segment, customer=c)
    return segment


def audience(n, prefix="c"):
    """n customers `<prefix>0000`... with email and consent, all in a static segment "all" (returned)."""
    now = utcnow()
    rows = [
        {
            "external_id": f"{prefix}{i:04d}",
            "email": f"{prefix}{i:04d}@example.com",
            "email_ci": f"{prefix}{i:04d}@example.com",
            "email_consent": True,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(n)
    ]
    with database.atomic():
        for start in range(0, n, 5000):  # SQLite binds at most 32,766 values a statement
            Customer.insert_many(rows[start : start + 5000]).execute()
    segment = Segment.create(
        code="all", name="All", type="static", source="list", definition={"version": 1, "match": "all", "blocks": []}
    )
    SegmentMember.insert_from(
        Customer.select(segment.id, Customer.id, now),
        [SegmentMember.segment, SegmentMember.customer, SegmentMember.since],
    ).execute()
    return segment
