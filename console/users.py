"""Users (role privacy): find a user by email, phone or id; the user's
consents with reasons, ledger with the chain's status, devices as stored,
guardian consent (record, revoke), export and erasure on request; the
minors awaiting a guardian's consent."""
import uuid

from flask import Response, redirect, render_template, request, stream_with_context, url_for
from flask_jwt_extended import current_user
from marshmallow import fields, validate

import consent
from consent import catalogue
from consent.ledger import ChangeContext
from console.forms import FormSchema, load_form, load_query
from console.web import blp, staff_page
from core.errors import ValidationFailed
from rights import records

PAGE = 25


class SearchForm(FormSchema):
    by = fields.String(required=True, validate=validate.OneOf(("email", "phone", "id")))
    q = fields.String(required=True, validate=validate.Length(min=1, max=254))


class PageQuery(FormSchema):
    cursor = fields.UUID(load_default=None)
    ledger_cursor = fields.Integer(load_default=None, validate=validate.Range(min=0, max=2**63 - 1))


class GuardianForm(FormSchema):
    guardian_name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    relationship = fields.String(required=True, validate=validate.Length(min=1, max=60))
    evidence_ref = fields.String(required=True, validate=validate.Length(min=1, max=200))


class ErasureForm(FormSchema):
    confirm = fields.String(required=True, validate=validate.Length(min=1, max=254))


def _context():
    return ChangeContext(source="guardian", ip=request.remote_addr, user_agent=request.user_agent.string or None)


def _search():
    """(form values, users found or None, errors) of the search in the query string."""
    if "q" not in request.args:
        return {"by": "email", "q": ""}, None, {}
    data, errors = load_query(SearchForm())
    shown = {"by": request.args.get("by", "email"), "q": request.args.get("q", "")}
    if errors:
        return shown, None, errors
    if data["by"] == "id":
        try:
            user_id = uuid.UUID(data["q"].strip())
        except ValueError:  # not an id, so nobody has it
            return shown, [], {}
        return shown, records.find_users(user_id=user_id), {}
    return shown, records.find_users(**{data["by"]: data["q"]}), {}


@blp.get("/users")
@staff_page("privacy")
def users():
    search, found, errors = _search()
    paging, page_errors = load_query(PageQuery())
    minors = records.minors_awaiting_guardian((paging or {}).get("cursor"), PAGE)
    return render_template("console/users/search.html", search=search, found=found, errors=errors or page_errors,
                           minors=minors, erased=request.args.get("erased"))


def _record_page(user_id, status=200, guardian_errors=None, erasure_errors=None, form=None):
    user = records.get_user(user_id)
    paging, _ = load_query(PageQuery())
    record = records.user_record(user, current_user)
    entries, next_cursor = records.ledger_history(user, (paging or {}).get("ledger_cursor"), PAGE)
    return render_template(
        "console/users/record.html", user=user, record=record, entries=entries, next_cursor=next_cursor,
        catalogue=catalogue, guardian_errors=guardian_errors or {}, erasure_errors=erasure_errors or {},
        form=form or {}, active_guardian=next((g for g in record["guardian_consents"] if g.revoked_at is None), None),
    ), status


@blp.get("/users/<uuid:user_id>")
@staff_page("privacy")
def user_record(user_id):
    return _record_page(user_id)


@blp.post("/users/<uuid:user_id>/guardian-consent")
@staff_page("privacy")
def record_guardian(user_id):
    user = records.get_user(user_id)
    data, errors = load_form(GuardianForm())
    if errors:
        return _record_page(user_id, 422, guardian_errors=errors, form=request.form)
    consent.record_guardian_consent(user, data["guardian_name"], data["relationship"], data["evidence_ref"],
                                    current_user, _context())
    return redirect(url_for("console.user_record", user_id=user.id), code=303)


@blp.post("/users/<uuid:user_id>/guardian-consent/revoke")
@staff_page("privacy")
def revoke_guardian(user_id):
    user = records.get_user(user_id)
    consent.revoke_guardian_consent(user, _context(), current_user)
    return redirect(url_for("console.user_record", user_id=user.id), code=303)


@blp.get("/users/<uuid:user_id>/export")
@staff_page("privacy")
def export_user(user_id):
    user = records.get_user(user_id)
    response = Response(stream_with_context(records.export_on_request(user, current_user)),
                        mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="user-{user.id}.json"'
    return response


@blp.post("/users/<uuid:user_id>/erase")
@staff_page("privacy")
def erase_user(user_id):
    user = records.get_user(user_id)
    data, errors = load_form(ErasureForm())
    if not errors:
        try:
            records.erase_on_request(user, current_user, data["confirm"])
        except ValidationFailed as refused:
            errors = refused.details
    if errors:
        return _record_page(user_id, 422, erasure_errors=errors)
    return redirect(url_for("console.users", erased=str(user_id)), code=303)
