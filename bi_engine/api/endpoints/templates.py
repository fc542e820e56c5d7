"""``/templates``: saved custom-analysis templates (list, read, create, replace, delete).

Each user sees and changes their own templates; an admin sees and changes everyone's.
Someone else's template answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import psycopg
from starlette.requests import Request
from starlette.responses import Response

from bi_engine.api import context
from bi_engine.api.endpoints.analyze import decode_json
from bi_engine.api.responses import JSONResponse
from bi_engine.api.state import engine
from bi_engine.db import templates as template_rows
from bi_engine.domain import templates


def _template_id(request: Request) -> templates.TemplateId:
    template_id = templates.parse_template_id(request.path_params["template_id"])
    context.note_audit(request, template_id=str(template_id))
    return template_id


async def _fields(request: Request) -> templates.TemplateFields:
    return templates.parse(decode_json(await request.body()))


def _name_taken(fields: templates.TemplateFields) -> templates.TemplateNameTaken:
    return templates.TemplateNameTaken(details={"name": fields.name})


async def list_templates(request: Request) -> Response:
    """The caller's templates (admin: everyone's), by name."""
    owner = context.owner_filter(context.principal(request))
    async with engine(request).pool.connection() as conn:
        rows = await template_rows.list_for(conn, owner, limit=templates.MAX_TEMPLATES_LISTED)
    return JSONResponse({"success": True, "templates": [templates.document(r) for r in rows]})


async def get_template(request: Request) -> Response:
    owner = context.owner_filter(context.principal(request))
    template_id = _template_id(request)
    async with engine(request).pool.connection() as conn:
        row = await template_rows.get(conn, template_id, owner)
    if row is None:
        raise templates.TemplateNotFound
    return JSONResponse(templates.document(row))


async def create_template(request: Request) -> Response:
    """201 with the template and its ``Location``; 409 when the caller already uses the name."""
    who = context.principal(request)
    fields = await _fields(request)
    async with engine(request).pool.connection() as conn:
        try:
            row = await template_rows.insert(conn, who.user_id, fields.model_dump())
        except psycopg.errors.UniqueViolation:
            raise _name_taken(fields) from None
    context.note_audit(request, template_id=str(row["id"]))
    headers = {"Location": templates.url(row["id"])}
    return JSONResponse(templates.document(row), status_code=201, headers=headers)


async def update_template(request: Request) -> Response:
    """Replace every field of the template."""
    owner = context.owner_filter(context.principal(request))
    template_id = _template_id(request)
    fields = await _fields(request)
    async with engine(request).pool.connection() as conn:
        try:
            row = await template_rows.update(conn, template_id, owner, fields.model_dump())
        except psycopg.errors.UniqueViolation:
            raise _name_taken(fields) from None
    if row is None:
        raise templates.TemplateNotFound
    return JSONResponse(templates.document(row))


async def delete_template(request: Request) -> Response:
    """204. Analyses that ran keep what they read; queued ones naming it will fail."""
    owner = context.owner_filter(context.principal(request))
    template_id = _template_id(request)
    async with engine(request).pool.connection() as conn:
        deleted = await template_rows.delete(conn, template_id, owner)
    if not deleted:
        raise templates.TemplateNotFound
    return Response(status_code=204)
