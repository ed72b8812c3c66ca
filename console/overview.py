"""The overview: consent in effect per permission, the ledger's daily
series, campaigns sending now, and the worker's health."""
from flask import render_template

from console.web import blp, staff_page


@blp.get("/overview")
@staff_page("campaigns", "privacy")
def overview():
    return render_template("console/overview.html")
