"""SSRF through callbacks: metadata, link-local, loopback and private targets are never called.

Three layers, each tested against the real thing:

- submit: a target written as such an address (in any spelling a resolver accepts) or a
  metadata name is a 422 at once, and no job is created;
- delivery (a real worker): a NAME that resolves to loopback is accepted at submit but
  refused before any connection — the loopback server behind it sees nothing;
- redirects: an allow-listed hook that answers 302 towards an internal address is not
  followed; the internal server sees nothing;
- DNS rebinding: a name whose answer changes between the check and the connection still
  gets its request at the address that was checked.

All traffic stays on 127.0.0.0/8: internal targets are only ever named, never reached.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bi_engine.settings import Settings
from bi_engine.webhooks import guard
from tests.security.conftest import HookServer
from tests.support import figures, jobs
from tests.support.processes import Process
from workers import callbacks

pytestmark = [pytest.mark.slow, pytest.mark.acceptance]

LITERAL_TARGETS = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://metadata/computeMetadata/v1/",
    "http://100.100.100.200/latest/meta-data/",
    "http://169.254.0.1/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[::1]/",
    "http://localhost.:8000/",
    "http://127.0.0.2/",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://0/",
    "http://0.0.0.0:8000/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://user:pass@example.com/",
    "https://198.51.100.7/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "ftp://example.com/",
    "dict://127.0.0.1:11211/",
    "http:///no-host",
    "javascript:alert(1)",
]
"""``localhost.`` resolves to loopback: refused at delivery if not here (see below)."""


async def test_unsafe_targets_are_refused_at_submit_and_create_nothing(
    http: httpx.AsyncClient, auth: Callable[..., dict[str, str]], sec_database_url: str
) -> None:
    with jobs.connect(sec_database_url) as conn:
        before = conn.execute("SELECT count(*) AS n FROM analyses").fetchone()
    answers = {}
    for url in LITERAL_TARGETS:
        body = {"type": "test", "data": {}, "callback_url": url}
        response = await http.post(f"{jobs.API}/analyze", json=body, headers=auth("ssrf"))
        answers[url] = response.status_code
        if response.status_code == 422:
            locs = [p["loc"] for p in response.json()["error"]["details"]]
            assert ["callback_url"] in locs, response.text
    with jobs.connect(sec_database_url) as conn:
        after = conn.execute("SELECT count(*) AS n FROM analyses").fetchone()
    # names that need DNS are checked at delivery (test below); everything else is a 422
    late = {u for u, s in answers.items() if s == 202}
    assert late <= {"http://localhost.:8000/"}, answers
    assert all(s in (202, 422) for s in answers.values()), answers
    assert after is not None
    assert before is not None
    assert after["n"] - before["n"] == len(late)
    figures.record(
        "security",
        f"SSRF at submit: {len(LITERAL_TARGETS)} targets, {len(LITERAL_TARGETS) - len(late)}"
        f" refused with 422 at once, {len(late)} left to the delivery check (a DNS name)",
    )


def _internal_names() -> list[str]:
    """Names this machine resolves to loopback or private addresses (from /etc/hosts)."""
    names = []
    for name in ("localhost", "localhost.", "ip6-localhost", "ip6-loopback", socket.gethostname()):
        try:
            addresses = guard.system_resolver(name.rstrip("."), 80)
        except OSError:
            continue
        if addresses and not any(_public(a) for a in addresses):
            names.append(name)
    return names


def _public(address: str) -> bool:
    try:
        guard.check_literal(f"http://[{address}]/" if ":" in address else f"http://{address}/")
    except guard.UnsafeCallbackURL:
        return False
    return True


async def _deliveries(database_url: str, job_id: str) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        with jobs.connect(database_url) as conn:
            return conn.execute(
                "SELECT attempt, status, http_status, error FROM webhook_deliveries"
                " WHERE job_id = %s ORDER BY attempt",
                (job_id,),
            ).fetchall()

    return await asyncio.to_thread(read)


async def _first_delivery(database_url: str, job_id: str) -> dict[str, Any]:
    for _ in range(300):
        rows = await _deliveries(database_url, job_id)
        if rows:
            return rows[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no delivery attempt recorded for {job_id}")


async def test_names_resolving_to_internal_addresses_are_never_called(
    http: httpx.AsyncClient,
    sec_settings: Settings,
    sec_database_url: str,
    sec_worker: Process,
    hook_server: Callable[..., HookServer],
) -> None:
    inside = hook_server()
    names = _internal_names()
    assert "localhost" in names
    refused = 0
    for name in names:
        url = f"http://{name}:{inside.port}/steal"
        doc = await jobs.submit(http, sec_settings, "ssrf", {"sleep_s": 0}, callback_url=url)
        row = await _first_delivery(sec_database_url, str(doc["job_id"]))
        assert row["status"] == "dead_letter", row
        assert "non-public" in (row["error"] or ""), row
        refused += 1
    assert inside.hits == []
    figures.record(
        "security",
        f"SSRF at delivery: {refused} names resolving to loopback/private addresses"
        f" ({', '.join(names)})"
        " refused before connecting; the server behind them got 0 requests",
    )


async def test_redirects_to_internal_targets_are_not_followed(
    http: httpx.AsyncClient,
    sec_settings: Settings,
    sec_database_url: str,
    sec_worker: Process,
    hook_server: Callable[..., HookServer],
) -> None:
    inside = hook_server()
    redirects = [
        f"http://localhost:{inside.port}/steal",
        f"http://[::1]:{inside.port}/steal",
        "http://169.254.169.254/latest/meta-data/",
        f"file:///etc/passwd?{inside.port}",
    ]
    for location in redirects:
        for status in (301, 302, 307, 308):
            hook = hook_server(status=status, location=location)
            url = f"http://127.0.0.1:{hook.port}/hook"
            doc = await jobs.submit(http, sec_settings, "ssrf", {"sleep_s": 0}, callback_url=url)
            row = await _first_delivery(sec_database_url, str(doc["job_id"]))
            assert (row["status"], row["http_status"]) == ("failed", status), row
            assert len(hook.hits) == 1
    assert inside.hits == []
    figures.record(
        "security",
        f"SSRF by redirect: {len(redirects) * 4} hooks answering 301/302/307/308 towards"
        " loopback, metadata and file: targets; none followed (0 requests inside)",
    )


async def test_a_dns_answer_that_changes_after_the_check_is_not_followed(
    monkeypatch: pytest.MonkeyPatch, hook_server: Callable[..., HookServer]
) -> None:
    """Rebinding: the first answer (checked) is 127.0.0.1, later ones 127.0.0.2."""
    checked = hook_server()
    rebound = HookServer()
    rebound.server = _serve_on("127.0.0.2", checked.port, rebound)
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1"])

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":
            host = next(answers, "127.0.0.2")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    settings = Settings(callback_allowed_hosts=("rebind.test",))
    try:
        outcome = await callbacks.send(
            settings, f"http://rebind.test:{checked.port}/hook", b"{}", "completed"
        )
    finally:
        rebound.stop()
    assert outcome.status == "delivered", outcome
    assert len(checked.hits) == 1
    assert checked.hits[0]["headers"]["Host"] == f"rebind.test:{checked.port}"
    assert rebound.hits == []


def _serve_on(address: str, port: int, hook: HookServer) -> Any:
    """``hook``'s handler on another loopback address (same port)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hook.hits.append({"path": self.path, "headers": dict(self.headers)})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((address, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize(
    ("answers", "allowed"),
    [
        (["169.254.169.254"], ()),
        (["169.254.169.254"], ("evil.test",)),  # metadata: refused even when listed
        (["::ffff:169.254.169.254"], ("evil.test",)),
        (["fd00:ec2::254"], ("evil.test",)),
        (["93.184.216.34", "10.1.2.3"], ()),  # one bad answer among good ones
        (["fe80::1%eth0"], ()),
        (["127.0.0.1"], ()),
        (["::1"], ()),
        (["192.168.0.10"], ()),
        (["100.64.0.1"], ()),
        ([], ()),
    ],
)
def test_every_address_a_name_resolves_to_is_checked(
    answers: list[str], allowed: tuple[str, ...]
) -> None:
    def resolver(host: str, port: int) -> list[str]:
        assert host == "evil.test"
        return answers

    with pytest.raises(guard.UnsafeCallbackURL):
        guard.check_url("https://evil.test/hook", allowed, resolver)
