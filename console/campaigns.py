"""Campaigns: the list, drafts with the audience builder and its preview,
sending, cancelling and resuming, progress and results."""
from flask import render_template

from console.web import blp, staff_page


@blp.get("/campaigns")
@staff_page("campaigns")
def campaigns():
    return render_template("console/campaigns/list.html")
