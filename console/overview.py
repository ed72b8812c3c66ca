"""The overview: consent in effect per permission (as the consent engine
decides it), the ledger's daily series, campaigns sending now, and the
worker's health."""
from flask import render_template

import consent
from consent import catalogue
from console import charts
from console.web import blp, staff_page
from push import campaigns
from rights import stats

# Reasons a grant is out of effect although the user chose it, in the
# engine's decision order; "withdrawn" and "not_asked" are choices.
CHOICES = ("withdrawn", "not_asked")
DAYS = 90


def consent_rows():
    effects = stats.consent_effects()
    # the engine's reasons, in its decision order; a column per reason even when nobody has it
    reasons = [rule.reason for rule in consent.RULES if rule.reason not in CHOICES]
    reasons += sorted({r for counts in effects.values() for r in counts} - {stats.IN_EFFECT, *CHOICES, *reasons})
    rows = [{"key": key, "title": catalogue.get(key).title,
             "in_effect": counts.get(stats.IN_EFFECT, 0), "withdrawn": counts.get("withdrawn", 0),
             "not_asked": counts.get("not_asked", 0),
             "reasons": {reason: counts.get(reason, 0) for reason in reasons}}
            for key, counts in effects.items()]
    return rows, reasons


def queue_health():
    """Placeholder until the readiness registry (core.readiness) is merged:
    only the number of tasks waiting in the queue, no heartbeat."""
    from core.worker import huey

    try:
        pending = huey.pending_count()
    except Exception as error:  # the queue's storage unreachable is what this panel reports
        return {"placeholder": True, "ok": False, "checks": [("queue", False, f"unreachable ({type(error).__name__})")]}
    return {"placeholder": True, "ok": True, "checks": [("queue", True, f"{pending} tasks waiting")]}


@blp.get("/overview")
@staff_page("campaigns", "privacy")
def overview():
    rows, reasons = consent_rows()
    series = stats.ledger_daily(DAYS)
    chart = charts.daily(f"Consent ledger, last {DAYS} days (UTC)", [day for day, _, _ in series],
                         {"grants": [g for _, g, _ in series], "withdrawals": [w for _, _, w in series]})
    return render_template("console/overview.html", rows=rows, reasons=reasons, ledger_chart=chart,
                           ledger_total=sum(g + w for _, g, w in series), health=queue_health(),
                           sending=sending_now())


def sending_now():
    return [{"campaign": campaign, "progress": campaigns.progress(campaign)} for campaign in campaigns.in_flight()]


@blp.get("/overview/sending")
@staff_page("campaigns", "privacy")
def overview_sending():
    """The fragment of campaigns sending now, polled by the overview."""
    return render_template("console/_sending.html", sending=sending_now())
