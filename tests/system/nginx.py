"""Debian's nginx as an unprivileged foreground child of the test: its config, pid,
logs and temp files in a temp dir, listening on free ports, stopped at the end."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.servers import ROOT, free_port, spawn, stop

SNIPPET = ROOT / "deploy" / "nginx" / "duotoken.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

# The page another origin of the same site serves: cookies of 127.0.0.1 ride along
# on its requests (SameSite=Lax counts the site, not the port), CSRF must refuse them.
ELSEWHERE_PAGE = "<!doctype html><title>elsewhere</title><p>another origin of the same site</p>"


class Nginx:
    def __init__(self, directory: Path, *, duotoken_port: int, orders_port: int) -> None:
        self.directory = directory
        self.port = free_port()
        self.elsewhere_port = free_port()
        self.duotoken_port = duotoken_port
        self.orders_port = orders_port
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def elsewhere_url(self) -> str:
        return f"http://127.0.0.1:{self.elsewhere_port}"

    def config(self) -> str:
        d = self.directory
        return f"""
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    # What the test reads back: the method, status and gateway verdict of each request.
    log_format verdicts '$request_method $request_uri $status "$duotoken_error" "$http_origin"';
    access_log {d}/access.log verdicts;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;

    upstream duotoken {{ server 127.0.0.1:{self.duotoken_port}; }}
    upstream orders {{ server 127.0.0.1:{self.orders_port}; }}

    server {{
        listen 127.0.0.1:{self.port};
        include {SNIPPET};
        # The SPA's pages (here the demo page and its static files).
        location / {{
            proxy_pass http://duotoken;
            proxy_set_header Host $http_host;
        }}
    }}
    server {{
        listen 127.0.0.1:{self.elsewhere_port};
        location / {{
            default_type text/html;
            return 200 '{ELSEWHERE_PAGE}';
        }}
    }}
}}
"""

    def start(self, timeout: float = 20) -> Nginx:
        conf = self.directory / "nginx.conf"
        conf.write_text(self.config())
        check = subprocess.run(
            [NGINX, "-t", "-p", str(self.directory), "-c", str(conf), "-e", str(self.directory / "error.log")],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stderr
        self.proc = spawn(
            [NGINX, "-p", str(self.directory), "-c", str(conf), "-e", str(self.directory / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.error_log()[-3000:]}")
            if all(_listening(port) for port in (self.port, self.elsewhere_port)):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not come up in time")

    def access_log(self) -> list[str]:
        path = self.directory / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def error_log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        stop(self.proc)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0
