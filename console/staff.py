"""Staff and audit (administrators): staff with their roles (change a
role, remove staff access; the last administrator stays), and the audit
log filtered by actor, action or target."""
from flask import redirect, render_template, request, url_for
from flask_jwt_extended import current_user
from marshmallow import fields, validate

from auth import audit, staff as staff_management
from console.forms import FormSchema, load_form, load_query
from console.web import blp, staff_page
from models import AuditEntry
from models.account import STAFF_ROLES

PAGE = 50


class RoleForm(FormSchema):
    role = fields.String(required=True, validate=validate.OneOf(STAFF_ROLES))


class AuditQuery(FormSchema):
    actor = fields.UUID(load_default=None)
    action = fields.String(load_default=None, validate=validate.OneOf(audit.ACTIONS))
    target = fields.String(load_default=None, validate=validate.Length(max=120))
    before_seq = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**63 - 1))


def _page(status=200, errors=None, chain=None):
    filters, query_errors = load_query(AuditQuery())
    entries, following = [], None
    if filters is not None:
        entries, following = audit.page(actor=filters["actor"], action=filters["action"], target=filters["target"],
                                        before_seq=filters["before_seq"], limit=PAGE)
    query = {name: value for name, value in request.args.items() if value and name != "before_seq"}
    return render_template("console/staff/index.html", members=staff_management.list_staff(), roles=STAFF_ROLES,
                           actions=audit.ACTIONS, entries=entries, following=following, query=query,
                           errors={**(errors or {}), **query_errors}, chain=chain,
                           chain_entries=AuditEntry.select().count()), status


@blp.get("/staff")
@staff_page("admin")
def staff():
    return _page()


@blp.post("/staff/verify-audit")
@staff_page("admin")
def verify_audit():
    """Recompute the whole audit chain, on request: it reads every entry,
    too much for each view of the page, which shows only the count."""
    return _page(chain=audit.verify())


@blp.post("/staff/<uuid:staff_id>/role")
@staff_page("admin")
def change_staff_role(staff_id):
    data, errors = load_form(RoleForm())
    if errors:
        return _page(422, errors)
    staff_management.change_role(current_user, staff_management.staff_member(staff_id), data["role"])
    return redirect(url_for("console.staff"), code=303)


@blp.post("/staff/<uuid:staff_id>/remove")
@staff_page("admin")
def remove_staff(staff_id):
    staff_management.remove(current_user, staff_management.staff_member(staff_id))
    return redirect(url_for("console.staff"), code=303)
