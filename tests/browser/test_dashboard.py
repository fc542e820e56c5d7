"""The dashboard in a real chromium against a real engine (serve + worker subprocesses)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.browser.conftest import ROOT, shoot
from tests.browser.engine import Engine

pytestmark = pytest.mark.acceptance

API = "/api/business-intelligence"
SAMPLES = ROOT / "bi_engine" / "samples"


def sign_in(page: Any, engine: Engine, user_id: str) -> str:
    token = engine.token(user_id)
    page.goto(f"{engine.url}/dashboard")
    page.fill("#signin-token", token)
    page.click("#signin-button")
    page.wait_for_selector("#workspace:not([hidden])")
    page.wait_for_selector("#live-state[data-state='live']")
    return token


def api_get(engine: Engine, token: str, path: str) -> Any:
    response = httpx.get(f"{engine.url}{path}", headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    return response.json()


def watch_list_progress(page: Any) -> None:
    """Record every value the Analysis Sessions progress bars take, as the page shows them."""
    page.evaluate(
        """() => {
        window.seenProgress = [];
        new MutationObserver((changes) => {
          for (const change of changes) {
            window.seenProgress.push(Number(change.target.getAttribute('aria-valuenow')));
          }
        }).observe(document.getElementById('session-list'),
                   {subtree: true, attributes: true, attributeFilter: ['aria-valuenow']});
      }"""
    )


def timeline_seqs(page: Any) -> list[int]:
    found = page.locator("#timeline li").evaluate_all("l => l.map(e => e.dataset.seq)")
    return [int(seq) for seq in found]


def submitted_job_id(page: Any) -> str:
    page.wait_for_selector("#session-list .session")
    job_id: str = page.locator("#session-list .session").first.get_attribute("data-job-id")
    return job_id


def test_the_dashboard_files_and_samples_over_http(engine: Engine) -> None:
    with httpx.Client(base_url=engine.url) as http:
        moved = http.get("/dashboard")
        assert (moved.status_code, moved.headers["location"]) == (308, "/dashboard/")
        index = http.get("/dashboard/")
        assert index.status_code == 200
        assert index.headers["content-type"].startswith("text/html")
        csp = index.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert index.headers["referrer-policy"] == "no-referrer"
        assert "<script>" not in index.text  # every script is a file the CSP allows
        script = http.get("/dashboard/js/app.js")
        assert "javascript" in script.headers["content-type"]
        assert http.get("/dashboard/js/nope.js").status_code == 404

        samples = http.get("/dashboard/samples").json()["samples"]
        bundled = sorted(path.stem for path in SAMPLES.glob("*.json"))
        assert [s["name"] for s in samples] == bundled
        first = samples[0]
        body = http.get(first["url"])
        assert body.content == (SAMPLES / f"{first['name']}.json").read_bytes()
        assert body.json()["type"] == first["type"]
        missing = http.get("/dashboard/samples/..%2Fsettings")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] in {"sample_not_found", "not_found"}


def test_submit_a_sample_watch_it_reach_100_and_read_the_report(page: Any, engine: Engine) -> None:
    token = sign_in(page, engine, f"ana-{uuid.uuid4().hex[:8]}")
    page.wait_for_selector("#submit-choice option[value='process_log']", state="attached")
    watch_list_progress(page)
    page.select_option("#submit-choice", "process_log")
    page.fill("#submit-context", "Monthly review")
    page.click("#submit-button")
    job_id = submitted_job_id(page)
    row = f"#session-list .session[data-job-id='{job_id}']"
    shoot(page, "dashboard-submitted")

    page.wait_for_selector(f"{row} .progress[aria-valuenow='100']", timeout=90_000)
    page.wait_for_selector("#detail .progress[aria-valuenow='100']")
    page.wait_for_selector("#report h1")
    shoot(page, "dashboard-report")

    seen = page.evaluate("window.seenProgress")
    assert any(0 < value < 100 for value in seen), seen  # it moved live, not just at the end
    assert seen == sorted(seen)
    assert page.inner_text(f"{row} .badge") == "Report ready"
    assert page.inner_text("#detail-status") == "Report ready"

    seqs = timeline_seqs(page)
    assert seqs == list(range(1, len(seqs) + 1))
    kinds = page.locator("#timeline li").evaluate_all("l => l.map(e => e.dataset.kind)")
    assert (kinds[0], kinds[-1]) == ("status", "completed")
    assert "progress" in kinds
    assert "Process Optimization Expert" in page.inner_text("#timeline")

    result = api_get(engine, token, f"{API}/jobs/{job_id}/result")["data"]
    analysis = result["analysis"]
    assert page.inner_text("#result-headline") == analysis["summary"]["headline"]
    assert page.locator("#kpis li").count() == len(analysis["kpis"])
    assert page.locator("#findings li").count() == len(analysis["findings"])
    assert page.locator("#recommendations > li").count() == len(analysis["recommendations"])
    report = page.locator("#report")
    first_line = result["report_markdown"].splitlines()[0].lstrip("# ")
    assert report.locator("h1").inner_text() == first_line
    assert report.locator("table").count() >= 1
    assert "Manager approval" in report.inner_text()
    assert "|---|" not in report.inner_text()  # tables rendered, not shown as text
    assert page.console.errors == []


def test_cancel_a_long_job_from_the_page_then_run_it_again(page: Any, engine: Engine) -> None:
    token = sign_in(page, engine, f"carl-{uuid.uuid4().hex[:8]}")
    page.wait_for_selector("#submit-choice option[value='__test__']", state="attached")
    page.select_option("#submit-choice", "__test__")
    page.fill("#submit-sleep", "120")
    page.click("#submit-button")
    job_id = submitted_job_id(page)

    page.wait_for_selector("#detail[data-status='running'] #timeline li[data-kind='progress']")
    page.click("#cancel-job")
    page.wait_for_selector("#detail[data-status='cancelled']", timeout=30_000)
    page.wait_for_selector("#timeline li[data-kind='cancelled']")
    shoot(page, "dashboard-cancelled")
    row = f"#session-list .session[data-job-id='{job_id}']"
    assert page.inner_text(f"{row} .badge") == "Cancelled"
    assert page.is_disabled("#cancel-job")
    assert page.is_enabled("#retry-job")
    assert api_get(engine, token, f"{API}/jobs/{job_id}")["status"] == "cancelled"

    page.click("#retry-job")
    page.wait_for_selector("#timeline li[data-kind='progress'] ~ li[data-kind='cancelled'] ~ li")
    page.wait_for_selector("#detail[data-status='running']", timeout=30_000)
    assert api_get(engine, token, f"{API}/jobs/{job_id}")["attempts"] >= 1
    page.click("#cancel-job")
    page.wait_for_selector("#detail[data-status='cancelled']", timeout=30_000)
    seqs = timeline_seqs(page)
    assert seqs == list(range(1, len(seqs) + 1))
    assert page.locator("#timeline li[data-kind='cancelled']").count() == 2
    assert page.console.errors == []


def test_a_token_the_engine_refuses_keeps_the_page_signed_out(page: Any, engine: Engine) -> None:
    page.goto(f"{engine.url}/dashboard/")
    page.fill("#signin-token", "eyJhbGciOiJub25lIn0.eyJ1c2VySWQiOiJtYWxsb3J5In0.")
    page.click("#signin-button")
    page.wait_for_selector("#signin-error:text('not accepted')")
    assert page.is_hidden("#workspace")
    assert page.evaluate("sessionStorage.getItem('bi-engine.token')") is None


def test_the_report_renderer_never_turns_text_into_markup(page: Any, engine: Engine) -> None:
    page.goto(f"{engine.url}/dashboard/")
    hostile = (
        "# Title <img src=x onerror=window.pwned=1>\n\n"
        "Text <script>window.pwned=2</script> **bold** and _snake_case_name_ ok\n\n"
        "[click](javascript:window.pwned=3) [fine](https://example.test/a)"
        " [dot](\u0001javascript:x)\n\n"
        "| a | b \\| c |\n|---|---:|\n| <b>x</b> | 2 |\n\n"
        "- one\n  - nested <i>\n- two\n\n> quoted\n\n```\n<svg onload=alert(1)>\n```\n"
    )
    found = page.evaluate(
        """async (text) => {
        const { renderMarkdown } = await import('/dashboard/js/markdown.js');
        const box = document.createElement('div');
        box.append(renderMarkdown(text));
        document.body.append(box);
        await new Promise((r) => setTimeout(r, 200));
        return {
          pwned: window.pwned ?? null,
          tags: [...box.querySelectorAll('*')].map((e) => e.tagName.toLowerCase()),
          links: [...box.querySelectorAll('a')].map((a) => a.getAttribute('href')),
          text: box.textContent,
          cells: [...box.querySelectorAll('td, th')].map((c) => c.textContent),
          align: box.querySelector('td:nth-child(2)').className,
        };
      }""",
        hostile,
    )
    assert found["pwned"] is None
    assert not {"img", "script", "svg", "b", "i"} & set(found["tags"])
    assert {"h1", "strong", "table", "ul", "blockquote", "pre", "code"} <= set(found["tags"])
    assert found["links"] == ["https://example.test/a"]
    assert "<script>window.pwned=2</script>" in found["text"]
    assert "snake_case_name" in found["text"]
    assert found["cells"] == ["a", "b | c", "<b>x</b>", "2"]
    assert found["align"] == "align-right"


def test_the_page_is_usable_on_a_phone(page: Any, engine: Engine) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, engine, f"mo-{uuid.uuid4().hex[:8]}")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    shoot(page, "dashboard-phone")
    assert page.console.errors == []
