"""Statistics (roles campaigns and privacy): the k-anonymous device
statistics and the consent counts, as charts."""
from flask import render_template

from console import charts
from console.web import blp, staff_page
from rights import stats

LABELS = {"model": "Model", "os_name": "Operating system", "os_version": "OS version", "carrier": "Carrier",
          "platform": "Platform", "app_version": "App version"}


@blp.get("/statistics")
@staff_page("campaigns", "privacy")
def statistics():
    devices = []
    for by in stats.DIMENSIONS:
        counts = stats.device_counts(by)
        groups = {str(group["value"] if group["value"] is not None else "unknown"): group["count"]
                  for group in counts["groups"]}
        devices.append({"by": by, "label": LABELS[by], "suppressed": counts["suppressed"], "groups": counts["groups"],
                        "chart": charts.bars(f"Devices by {LABELS[by].lower()}", groups, label="devices",
                                             empty="no group large enough to show")})
    tally = stats.consent_counts()
    keys = list(tally["permissions"])
    consents = charts.stacked("Users per permission", keys, {
        "granted": [tally["permissions"][key]["granted"] for key in keys],
        "withdrawn": [tally["permissions"][key]["withdrawn"] for key in keys],
        "never asked": [tally["permissions"][key]["not_asked"] for key in keys],
    })
    return render_template("console/statistics.html", devices=devices, tally=tally, consents=consents)
