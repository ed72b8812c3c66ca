"""Policies (role privacy): the published versions and what each changed,
and publishing a new one, with a notification if asked."""
from flask import redirect, render_template, request, url_for
from flask_jwt_extended import current_user
from marshmallow import fields, validate
from peewee import IntegrityError

import consent
from consent import catalogue
from console.forms import FormSchema, load_form
from console.web import blp, staff_page
from core.schemas import FullMatch
from models.consent import PolicyVersion
from push import campaigns


class PolicyForm(FormSchema):
    version = fields.String(required=True, validate=[
        validate.Length(min=1, max=32), FullMatch(r"^[A-Za-z0-9._-]+$", error="Letters, digits, . _ - only.")])
    text = fields.String(required=True, validate=validate.Length(min=1, max=200_000))
    changed_permissions = fields.List(fields.String(validate=validate.OneOf(catalogue.KEYS)), load_default=list)
    notify = fields.Boolean(load_default=False)


def _page(status=200, errors=None, form=None):
    return render_template("console/policies.html", policies=PolicyVersion.history(), catalogue=catalogue,
                           errors=errors or {}, form=form or {}, published=request.args.get("published")), status


@blp.get("/policies")
@staff_page("privacy")
def policies():
    return _page()


@blp.post("/policies")
@staff_page("privacy")
def publish_policy():
    data, errors = load_form(PolicyForm())
    if not errors:
        try:
            policy = consent.publish_policy(data["version"], data["text"], data["changed_permissions"], current_user)
        except IntegrityError:
            errors = {"version": ["Already published."]}
    if errors:
        return _page(422, errors, request.form)
    if data["notify"]:
        campaigns.notify_policy(policy, current_user)
    return redirect(url_for("console.policies", published=policy.version), code=303)
