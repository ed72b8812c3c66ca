"""Campaigns: the list, drafts with the audience builder and its preview,
sending, cancelling and resuming, progress and results. Every change goes
through ``push.campaigns`` (as the API's do), and every form is read with
the API's own campaign schema."""
from flask import redirect, render_template, request, url_for
from flask_jwt_extended import current_user
from marshmallow import ValidationError

from console import charts
from console.web import blp, staff_page
from core.errors import NotFound
from models.device import PLATFORMS
from models.push import Campaign
from push import campaigns
from push.schemas import AudienceSchema, CampaignCreateSchema

PER_PAGE = 25
LIST_FIELDS = ("os_names", "models", "carriers")
AREA_FIELDS = ("latitude", "longitude", "radius_km")


def _campaign(campaign_id):
    campaign = Campaign.get_or_none(Campaign.id == campaign_id)
    if campaign is None:
        raise NotFound("No such campaign.")
    return campaign


# -- the form, as the API's JSON --------------------------------------------------

def _number(text):
    """A number typed in a field; left as text when it is not one, for the
    schema to refuse with its own message."""
    try:
        return float(text)
    except ValueError:
        return text


def audience_from_form(form):
    audience = {}
    platforms = [p for p in form.getlist("platforms") if p]
    if platforms:
        audience["platforms"] = platforms
    for name in ("app_version_min", "active_within_days"):
        if form.get(name, "").strip():
            audience[name] = form[name].strip()
    for name in LIST_FIELDS:
        values = [value.strip() for value in form.get(name, "").split(",") if value.strip()]
        if values:
            audience[name] = values
    area = {name: _number(form[name].strip()) for name in AREA_FIELDS if form.get(name, "").strip()}
    if area:
        audience["area"] = area
    return audience


def campaign_from_form(form):
    """The body ``POST /v1/admin/campaigns`` would take for this form."""
    data = {name: form.get(name, "") for name in ("name", "kind", "title", "body")}
    pairs = [line.split("=", 1) for line in form.get("data", "").splitlines() if line.strip()]
    data["data"] = {pair[0].strip(): (pair[1].strip() if len(pair) > 1 else "") for pair in pairs}
    audience = audience_from_form(form)
    if audience:
        data["audience"] = audience
    send_at = form.get("send_at", "").strip()
    if send_at:
        data["send_at"] = send_at if send_at.endswith("Z") or "+" in send_at[10:] else send_at + "Z"
    return data


def form_from_campaign(campaign):
    audience = campaign.audience or {}
    area = audience.get("area") or {}
    values = {"name": campaign.name, "kind": campaign.kind, "title": campaign.title, "body": campaign.body,
              "data": "\n".join(f"{k}={v}" for k, v in (campaign.data or {}).items()),
              "platforms": audience.get("platforms") or [],
              "app_version_min": audience.get("app_version_min") or "",
              "active_within_days": audience.get("active_within_days") or "",
              "send_at": campaign.send_at.strftime("%Y-%m-%dT%H:%M") if campaign.send_at else ""}
    values.update({name: ", ".join(audience.get(name) or []) for name in LIST_FIELDS})
    values.update({name: area.get(name, "") for name in AREA_FIELDS})
    return values


def form_values(form):
    values = {name: form.get(name, "") for name in form}
    values["platforms"] = form.getlist("platforms")
    return values


def flatten(messages, prefix=""):
    """``{"audience": {"area": {"latitude": [...]}}}`` -> ``{"audience.area.latitude": "..."}``."""
    flat = {}
    for name, value in messages.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(flatten(value, key + "."))
        else:
            flat[key] = " ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    return flat


def _editor(values, errors, campaign=None, status=200):
    return render_template("console/campaigns/edit.html", values=values, errors=errors, campaign=campaign,
                           platforms=PLATFORMS, kinds=Campaign.KINDS), status


# -- the list -----------------------------------------------------------------------

@blp.get("/campaigns", endpoint="campaigns")
@staff_page("campaigns")
def campaign_list():
    filters = {name: request.args.get(name) or None for name in ("status", "kind", "target")}
    allowed = {"status": Campaign.STATUSES, "kind": Campaign.KINDS, "target": Campaign.TARGETS}
    filters = {name: value for name, value in filters.items() if value in allowed[name]}
    page = max(1, request.args.get("page", 1, type=int) or 1)
    rows = list(Campaign.newest(**filters, limit=PER_PAGE + 1).offset((page - 1) * PER_PAGE))
    items = [{"campaign": c, "counters": campaigns.status(c)} for c in rows[:PER_PAGE]]
    return render_template("console/campaigns/list.html", items=items, filters=filters, page=page,
                           more=len(rows) > PER_PAGE, statuses=Campaign.STATUSES, kinds=Campaign.KINDS,
                           targets=Campaign.TARGETS)


# -- drafts ---------------------------------------------------------------------------

@blp.get("/campaigns/new")
@staff_page("campaigns")
def campaign_new():
    return _editor({"kind": "marketing", "platforms": []}, {})


@blp.post("/campaigns/new")
@staff_page("campaigns")
def campaign_create():
    try:
        data = CampaignCreateSchema().load(campaign_from_form(request.form))
    except ValidationError as error:
        return _editor(form_values(request.form), flatten(error.messages), status=422)
    campaign = campaigns.create(data, current_user)
    return redirect(url_for("console.campaign", campaign_id=campaign.id), code=303)


@blp.get("/campaigns/<uuid:campaign_id>/edit")
@staff_page("campaigns")
def campaign_edit(campaign_id):
    campaign = _campaign(campaign_id)
    return _editor(form_from_campaign(campaign), {}, campaign)


@blp.post("/campaigns/<uuid:campaign_id>/edit")
@staff_page("campaigns")
def campaign_update(campaign_id):
    campaign = _campaign(campaign_id)
    try:
        data = CampaignCreateSchema().load(campaign_from_form(request.form))
    except ValidationError as error:
        return _editor(form_values(request.form), flatten(error.messages), campaign, status=422)
    campaigns.update(campaign, {**data, "audience": data.get("audience") or {}}, current_user)
    return redirect(url_for("console.campaign", campaign_id=campaign.id), code=303)


@blp.post("/campaigns/preview")
@staff_page("campaigns")
def campaign_preview():
    """The audience preview of the form as it stands (nothing is stored):
    the eligible count and the exclusions by reason, as a fragment."""
    kind = request.form.get("kind") if request.form.get("kind") in Campaign.KINDS else "marketing"
    try:
        audience = AudienceSchema().load(audience_from_form(request.form))
    except ValidationError as error:
        return render_template("console/campaigns/_preview.html", errors=flatten(error.messages, "audience."),
                               preview=None)
    preview = campaigns.preview(campaigns.draft({"kind": kind, "audience": audience}))
    return render_template("console/campaigns/_preview.html", errors={}, preview=preview,
                           chart=charts.bars("Excluded devices by reason", preview["excluded"], label="devices",
                                             empty="no device excluded"))


# -- one campaign ---------------------------------------------------------------------

def _live(campaign):
    progress = campaigns.progress(campaign)
    results = campaigns.results(campaign) if progress["finished"] or campaign.status == Campaign.PAUSED else None
    result_charts = None
    if results is not None:
        result_charts = {"outcomes": charts.bars("Devices by outcome", results["outcomes"], label="devices"),
                         "reasons": charts.bars("Excluded or skipped devices by reason", results["reasons"],
                                                label="devices", empty="no device excluded or skipped")}
    return {"campaign": campaign, "progress": progress, "results": results, "result_charts": result_charts}


@blp.get("/campaigns/<uuid:campaign_id>", endpoint="campaign")
@staff_page("campaigns")
def campaign_page(campaign_id):
    campaign = _campaign(campaign_id)
    preview = chart = None
    if campaign.status == Campaign.DRAFT:
        preview = campaigns.preview(campaign)
        chart = charts.bars("Excluded devices by reason", preview["excluded"], label="devices",
                            empty="no device excluded")
    return render_template("console/campaigns/show.html", preview=preview, chart=chart, **_live(campaign))


@blp.get("/campaigns/<uuid:campaign_id>/progress")
@staff_page("campaigns")
def campaign_progress(campaign_id):
    """Progress (and, once finished, results) as a fragment, polled by the campaign's page."""
    return render_template("console/campaigns/_live.html", **_live(_campaign(campaign_id)))


def _act(campaign_id, action):
    campaign = _campaign(campaign_id)
    action(campaign, current_user)
    return redirect(url_for("console.campaign", campaign_id=campaign.id), code=303)


@blp.post("/campaigns/<uuid:campaign_id>/send")
@staff_page("campaigns")
def campaign_send(campaign_id):
    """Send now, or at the draft's ``send_at``."""
    return _act(campaign_id, campaigns.send)


@blp.post("/campaigns/<uuid:campaign_id>/cancel")
@staff_page("campaigns")
def campaign_cancel(campaign_id):
    return _act(campaign_id, campaigns.cancel)


@blp.post("/campaigns/<uuid:campaign_id>/resume")
@staff_page("campaigns")
def campaign_resume(campaign_id):
    return _act(campaign_id, campaigns.resume)
