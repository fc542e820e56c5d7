"""Saved templates: CRUD per owner, and custom analyses driven by them (submit and worker)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from bi_engine.db import connection
from tests.integration.ops.conftest import API, audit_rows, flush_audit
from workers import pipeline, runners
from workers.app import make_pool
from workers.job import AnalysisOutcome, JobContext, ProgressSink

pytestmark = pytest.mark.integration

TEMPLATE = {
    "name": "Monthly invoice review",
    "description": "What finance asks every month",
    "analysis_type": "process_analysis",
    "question": "Which Process Step should we automate first?",
    "config": {"metrics_focus": ["cycle_time"], "context": "Finance operations"},
}
RUNS = {"runs": [{"run_id": "r1", "started_at": "2026-01-01T00:00:00Z", "steps": []}]}


async def create(client: Any, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = await client.post(f"{API}/templates", json={**TEMPLATE, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_templates_belong_to_their_owner(served, auth, db):
    app, client = served
    created = await create(client, auth())
    url = f"{API}/templates/{created['id']}"
    assert created["owner_id"] == "alice"
    assert created["config"] == TEMPLATE["config"]
    assert (await client.get(url, headers=auth())).json()["name"] == TEMPLATE["name"]
    mine = (await client.get(f"{API}/templates", headers=auth())).json()["templates"]
    assert [t["id"] for t in mine] == [created["id"]]
    # someone else's template does not exist for them; an admin sees it
    assert (await client.get(url, headers=auth("bob"))).status_code == 404
    assert (await client.put(url, json=TEMPLATE, headers=auth("bob"))).status_code == 404
    assert (await client.delete(url, headers=auth("bob"))).status_code == 404
    assert (await client.get(f"{API}/templates", headers=auth("bob"))).json()["templates"] == []
    admin = auth("root", role="admin")
    assert (await client.get(url, headers=admin)).status_code == 200
    assert len((await client.get(f"{API}/templates", headers=admin)).json()["templates"]) == 1
    # replace, then delete
    changed = await client.put(url, json={**TEMPLATE, "question": "What now?"}, headers=auth())
    assert changed.status_code == 200
    assert changed.json()["question"] == "What now?"
    assert changed.json()["updated_at"] >= created["updated_at"]
    assert (await client.delete(url, headers=auth())).status_code == 204
    assert (await client.get(url, headers=auth())).status_code == 404
    await flush_audit(app)
    with db() as conn:
        rows = audit_rows(conn, user_id="alice")
    actions = [r["action"] for r in rows]
    for action in ("template_created", "template_read", "template_updated", "template_deleted"):
        assert action in actions
    deleted = next(r for r in rows if r["action"] == "template_deleted")
    assert deleted["details"] == {"template_id": created["id"]}


async def test_names_are_unique_per_owner_and_fields_are_checked(client, auth):
    first = await create(client, auth())
    duplicate = await client.post(f"{API}/templates", json=TEMPLATE, headers=auth())
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "template_name_taken"
    assert (await client.post(f"{API}/templates", json=TEMPLATE, headers=auth("bob"))).status_code
    other = await create(client, auth(), name="Other")
    rename = await client.put(
        f"{API}/templates/{other['id']}", json={**TEMPLATE, "name": first["name"]}, headers=auth()
    )
    assert rename.status_code == 409
    cases = (
        ({"name": ""}, ["name"]),
        ({"analysis_type": "test"}, ["analysis_type"]),
        ({"config": []}, ["config"]),
        ({"question": "nul \x00"}, ["question"]),
        ({"surprise": 1}, ["surprise"]),
    )
    for n, (bad, where) in enumerate(cases):  # one user each: writes are limited to 5/min
        body = {**TEMPLATE, **bad}
        response = await client.post(f"{API}/templates", json=body, headers=auth(f"u{n}"))
        assert response.status_code == 422, bad
        assert response.json()["error"]["details"][0]["loc"] == where
    not_object = await client.post(f"{API}/templates", content=b"[]", headers=auth("v1"))
    assert not_object.status_code == 422
    broken = await client.post(f"{API}/templates", content=b"{", headers=auth("v2"))
    assert broken.status_code == 400
    assert (await client.get(f"{API}/templates/not-a-uuid", headers=auth())).status_code == 404


async def test_a_custom_analysis_may_name_only_a_template_its_submitter_may_use(client, auth):
    mine = await create(client, auth())
    theirs = await create(client, auth("bob"))

    async def submit(template_id: str, user: str = "alice") -> Any:
        body = {"type": "custom_analysis", "data": {**RUNS, "template_id": template_id}}
        return await client.post(f"{API}/analyze", json=body, headers=auth(user))

    assert (await submit(mine["id"])).status_code == 202
    for unknown in (theirs["id"], str(uuid.uuid4()), "not-a-uuid"):
        refused = await submit(unknown)
        assert refused.status_code == 422
        assert refused.json()["error"]["details"][0]["loc"] == ["data", "template_id"]
    assert (await submit(theirs["id"], user="root")).status_code == 422  # a user, not admin
    admin = auth("root", role="admin")
    body = {"type": "custom_analysis", "data": {**RUNS, "template_id": theirs["id"]}}
    assert (await client.post(f"{API}/analyze", json=body, headers=admin)).status_code == 202


class Capture:
    """A runner that records what the pipeline hands it."""

    def __init__(self) -> None:
        self.contexts: list[JobContext] = []

    async def __call__(self, ctx: JobContext, sink: ProgressSink) -> AnalysisOutcome:
        self.contexts.append(ctx)
        return AnalysisOutcome(
            result={"analysis": {}}, report_markdown="# ok", headline="ok", provider="pattern"
        )


async def test_the_worker_hands_the_template_to_the_runner(client, auth, settings):
    template = await create(client, auth())
    body = {"type": "custom_analysis", "data": {**RUNS, "template_id": template["id"]}}
    kept = (await client.post(f"{API}/analyze", json=body, headers=auth())).json()["job_id"]
    gone = (await client.post(f"{API}/analyze", json=body, headers=auth())).json()["job_id"]
    capture = Capture()
    registry = runners.RunnerRegistry()
    registry.register("custom_analysis", capture)
    async with make_pool(settings, 4) as pool:
        deps = pipeline.Deps(settings=settings, pool=pool, registry=registry)
        assert (await pipeline.run_analysis(deps, uuid.UUID(kept))).kind == "completed"
        await client.delete(f"{API}/templates/{template['id']}", headers=auth())
        failed = await pipeline.run_analysis(deps, uuid.UUID(gone))
    (ctx,) = capture.contexts
    assert ctx.options["template"] == {
        "id": template["id"],
        "name": TEMPLATE["name"],
        "description": TEMPLATE["description"],
        "analysis_type": TEMPLATE["analysis_type"],
        "question": TEMPLATE["question"],
        "config": TEMPLATE["config"],
    }
    assert (failed.kind, failed.code) == ("failed", "invalid_data")
    conn = await connection.connect(settings.require_database_url(), settings.db_schema)
    try:
        cursor = await conn.execute("SELECT error_message FROM analyses WHERE id = %s", (gone,))
        row = await cursor.fetchone()
    finally:
        await conn.close()
    assert row is not None
    assert "template" in row["error_message"]
