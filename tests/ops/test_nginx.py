"""deploy/nginx.conf in front of gunicorn, as the README's Production section
sets it up: nginx (with this very file, its ports and paths replaced) over
HTTPS, gunicorn with deploy/gunicorn.conf.py and TRUSTED_PROXIES=1. Clients
connect from 127.0.0.5, an address nginx sees and the app only learns from
the forwarded headers."""

import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time

import pytest
from conftest import IN_CI, PASSWORD, csrf_from
from procs import ROOT, free_port, kill_tree

CLIENT = "127.0.0.5"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def render(conf, *, http_port, https_port, app_port, cert, key):
    """deploy/nginx.conf with this test's ports and paths; each replaced text must be there."""
    replacements = [
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{app_port};"),
        ("/etc/letsencrypt/live/crm.example.ru/fullchain.pem", str(cert)),
        ("/etc/letsencrypt/live/crm.example.ru/privkey.pem", str(key)),
        ("alias /opt/segmento/static/;", f"alias {ROOT / 'static'}/;"),
        ("server_name crm.example.ru;", "server_name localhost;"),
    ]
    for old, new in replacements:
        assert old in conf, f"deploy/nginx.conf no longer has {old!r}: update this test"
        conf = conf.replace(old, new)
    conf, http_listens = re.subn(r"listen 80\b", f"listen {http_port}", conf)
    conf, https_listens = re.subn(r"listen 443\b", f"listen {https_port}", conf)
    assert http_listens == 2 and https_listens == 2, (http_listens, https_listens)
    # IPv6 may be missing where the tests run
    return "\n".join(line for line in conf.splitlines() if "listen [::]" not in line)


class Answer:
    def __init__(self, response):
        self.status = response.status
        self.headers = response.headers
        self.body = response.read()

    @property
    def text(self):
        return self.body.decode()


class Site:
    """HTTPS to nginx for the name `localhost`, from a chosen source address."""

    def __init__(self, port, cert):
        self.port = port
        self.context = ssl.create_default_context(cafile=str(cert))
        self.cookie = ""

    @property
    def origin(self):
        return f"https://localhost:{self.port}"

    def request(self, method, path, *, source=CLIENT, host="localhost", headers=None, body=None):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=20, source_address=(source, 0))
        conn = http.client.HTTPSConnection("localhost", self.port, timeout=20)
        conn.sock = self.context.wrap_socket(sock, server_hostname="localhost")
        sent = {"Host": f"{host}:{self.port}", **(headers or {})}
        if self.cookie:
            sent["Cookie"] = self.cookie
        try:
            conn.request(method, path, body=body, headers=sent)
            answer = Answer(conn.getresponse())
        finally:
            conn.close()
        for cookie in answer.headers.get_all("Set-Cookie") or []:
            if cookie.startswith("session="):
                self.cookie = cookie.split(";", 1)[0]
        return answer


@pytest.fixture
def proxied(db, db_url, queue_server, make_user, tmp_path):
    """gunicorn (deploy/gunicorn.conf.py, one process) behind nginx (deploy/nginx.conf)."""
    if NGINX is None or shutil.which("openssl") is None:
        message = "nginx or openssl is not installed (Debian packages nginx, openssl; .ci/run installs them)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    make_user(email="admin@example.com", role="admin")
    if not db.is_closed():
        db.close()

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    app_port, http_port, https_port = free_port(), free_port(), free_port()
    (tmp_path / "prometheus").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", "SESSION_COOKIE_SECURE")}
    env.update(
        DATABASE_URL=db_url,
        REDIS_URL=queue_server,
        SEGMENTO_INSTANCE=str(tmp_path / "instance"),
        SECRET_KEY="nginx-test",
        PUBLIC_URL=f"https://localhost:{https_port}",
        TRUSTED_PROXIES="1",
        ACCESS_LOG="1",
        BIND=f"127.0.0.1:{app_port}",
        WEB_CONCURRENCY="1",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
        PYTHONUNBUFFERED="1",
    )
    app_log = tmp_path / "gunicorn.log"
    with open(app_log, "w") as out:
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "app:app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    site_conf = tmp_path / "segmento.conf"
    site_conf.write_text(
        render(
            (ROOT / "deploy" / "nginx.conf").read_text(),
            http_port=http_port,
            https_port=https_port,
            app_port=app_port,
            cert=cert,
            key=key,
        )
    )
    temp = {name: tmp_path / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    mime = "include /etc/nginx/mime.types;" if os.path.exists("/etc/nginx/mime.types") else ""
    main_conf = tmp_path / "nginx.conf"
    main_conf.write_text(
        # as root, nginx's workers would be `nobody`, who may not read the checkout's static/
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\nworker_processes 1;\npid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\n"
        + "events { worker_connections 64; }\n"
        + f"http {{\n{mime}\ndefault_type application/octet-stream;\naccess_log {tmp_path / 'access.log'};\n"
        + f"client_body_temp_path {temp['body']};\n"
        + "".join(f"{name}_temp_path {temp[name]};\n" for name in ("proxy", "fastcgi", "uwsgi", "scgi"))
        + f"include {site_conf};\n}}\n"
    )
    proxy = subprocess.Popen(
        [NGINX, "-e", str(tmp_path / "error.log"), "-c", str(main_conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        site = Site(https_port, cert)
        deadline = time.monotonic() + 60
        while True:
            try:
                if site.request("GET", "/login", source="127.0.0.1").status == 200:
                    break
            except OSError:
                pass
            assert proxy.poll() is None, proxy.stderr.read().decode() + (tmp_path / "error.log").read_text()
            assert web.poll() is None and time.monotonic() < deadline, app_log.read_text()[-3000:]
            time.sleep(0.3)
        site.cookie = ""
        yield site, app_log
    finally:
        proxy.terminate()
        proxy.wait(10)
        kill_tree(web.pid)
        web.wait(10)


def request_lines(app_log):
    return [
        line.split("segmento.request: ", 1)[1]
        for line in app_log.read_text().splitlines()
        if "segmento.request: " in line
    ]


@pytest.mark.sqlite_only
def test_first_sign_in_over_https_behind_nginx_with_the_client_address_and_static_files_from_nginx(proxied):
    site, app_log = proxied

    # Static files: nginx reads them from the checkout; gunicorn never sees the request.
    css = site.request("GET", "/static/app.css")
    assert css.status == 200
    assert css.body == (ROOT / "static" / "app.css").read_bytes()
    assert css.headers["Cache-Control"] == "no-cache"  # revalidated: an upgrade's files reach browsers
    assert "max-age" in css.headers.get("Strict-Transport-Security", "")  # not lost by a location's own add_header

    # The sign-in form over HTTPS: a Secure session cookie, and the CSRF check
    # (which over HTTPS wants a same-site Referer) passes with the browser's Referer.
    page = site.request("GET", "/login")
    assert page.status == 200
    assert "; Secure" in page.headers["Set-Cookie"] and "HttpOnly" in page.headers["Set-Cookie"]
    token = csrf_from(page.text)
    form = f"csrf_token={token}&email=admin%40example.com&password={PASSWORD.replace(' ', '+')}"
    posted = {"Content-Type": "application/x-www-form-urlencoded"}
    no_referer = site.request("POST", "/login", headers=posted, body=form)
    assert no_referer.status == 400  # the app knows it is reached over HTTPS (X-Forwarded-Proto)
    # A forged X-Forwarded-For is replaced by nginx with the address it saw.
    signed_in = site.request(
        "POST",
        "/login",
        headers={**posted, "Referer": f"{site.origin}/login", "X-Forwarded-For": "203.0.113.9"},
        body=form,
    )
    assert signed_in.status == 302, signed_in.text[:500]
    assert signed_in.headers["Location"] == "/"
    assert "; Secure" in signed_in.headers["Set-Cookie"]
    home = site.request("GET", "/")
    assert home.status == 200 and "admin@example.com" in home.text

    lines = request_lines(app_log)
    assert not [line for line in lines if "/static/" in line], lines
    assert [line for line in lines if line.startswith("POST /login 302 ") and line.endswith(f"from {CLIENT}")], lines
    assert [line for line in lines if line.startswith("GET / 200 ") and line.endswith(f"from {CLIENT} user 1")], lines
    assert not [line for line in lines if "203.0.113.9" in line], lines


@pytest.mark.sqlite_only
def test_nginx_keeps_monitoring_pages_other_hosts_and_forged_headers_away_from_the_app(proxied):
    site, app_log = proxied

    # /metrics and /healthz: only the monitoring networks get through nginx.
    assert site.request("GET", "/metrics").status == 403
    assert site.request("GET", "/healthz").status == 403
    # From an allowed address, a forged X-Forwarded-For is replaced too (the
    # app answers 404 to an address outside MONITORING_NETWORKS).
    metrics = site.request("GET", "/metrics", source="127.0.0.1", headers={"X-Forwarded-For": "203.0.113.9"})
    assert metrics.status == 200 and "segmento_" in metrics.text

    # Another Host never reaches the app.
    before = len(request_lines(app_log))
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        site.request("GET", "/password/forgot", host="evil.example")
    assert len(request_lines(app_log)) == before

    # A client's own X-Forwarded-Prefix does not move the app's links.
    page = site.request("GET", "/login", headers={"X-Forwarded-Prefix": "/evil"})
    assert page.status == 200
    assert 'href="/static/app.css"' in page.text and "/evil" not in page.text

    # Uploads above client_max_body_size stop at nginx.
    too_big = site.request("POST", "/imports/new", headers={"Content-Length": str(600 * 1024 * 1024)}, body=b"")
    assert too_big.status == 413
