"""What every console page builds on: the ``console`` blueprint, the
``staff_page`` decorator (the session cookie, its CSRF token and the staff
role checked before the view runs), the navigation and the HTML answers to
errors."""
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, g, redirect, render_template, request, url_for
from flask_jwt_extended import current_user, get_jwt, verify_jwt_in_request
from flask_jwt_extended.exceptions import CSRFError, JWTExtendedException
from jwt.exceptions import PyJWTError
from werkzeug.exceptions import HTTPException

from core.errors import DomainError
from core.http import status_of

blp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
                static_folder="static", static_url_path="/static")

# (endpoint, label, roles that see it); a page not registered is not shown.
NAVIGATION = (
    ("console.overview", "Overview", ("campaigns", "privacy")),
    ("console.campaigns", "Campaigns", ("campaigns",)),
    ("console.users", "Users", ("privacy",)),
    ("console.policies", "Policies", ("privacy",)),
    ("console.statistics", "Statistics", ("campaigns", "privacy")),
    ("console.staff", "Staff & audit", ("admin",)),
)

# Everything the console loads comes from the app itself; pygal's SVG
# carries its styles inline.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; "
                           "frame-ancestors 'none'; base-uri 'none'")


class PageRefused(Exception):
    """A console request refused with an HTML page: ``status`` and a sentence."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def staff_page(*roles):
    """A console view for staff holding one of ``roles`` (``admin`` always
    may; no roles: any staff). Without a valid session a page is redirected
    to the sign-in, any other request (a script's fetch included) refused
    with 401; a state-changing
    request without the session's CSRF token (form field ``csrf_token`` or
    header ``X-CSRF-TOKEN``) is refused with 403, as is staff without the role."""
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            g.jwt_load_user = True
            try:
                verify_jwt_in_request(locations=["cookies"])
            except CSRFError:
                raise PageRefused(403, "This request did not carry the page's security token; reload the page and try again.") from None
            except (JWTExtendedException, PyJWTError):
                # a page opened is sent to the sign-in; a fragment fetched by a script is refused
                if request.method in ("GET", "HEAD") and request.headers.get("Sec-Fetch-Mode", "navigate") == "navigate":
                    return redirect(url_for("console.sign_in", next=request.full_path.rstrip("?")))
                raise PageRefused(401, "Your console session has ended; sign in again.") from None
            if not current_user.is_staff:
                raise PageRefused(403, "The console is for staff.")
            if roles and not current_user.has_role(*roles):
                allowed = " or ".join(sorted(set(roles) | {"admin"}))
                raise PageRefused(403, f"This page is for staff with the role {allowed}.")
            return view(*args, **kwargs)

        wrapper.staff_roles = roles
        return wrapper

    return decorator


def safe_next(target):
    """``target`` if it is a console path of this host, else the overview:
    the sign-in must not redirect anywhere else."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/console/") and "\\" not in target:
            return target
    return url_for("console.overview")


def navigation():
    from flask import current_app

    user = current_user if g.get("jwt_user") is not None else None
    if user is None:
        return []
    return [(url_for(endpoint), label, endpoint == request.endpoint)
            for endpoint, label, roles in NAVIGATION
            if endpoint in current_app.view_functions and user.has_role(*roles)]


@blp.app_template_global()
def csrf_token():
    """The session's CSRF token, for forms' hidden field and fetch's header."""
    try:
        return get_jwt().get("csrf", "")
    except RuntimeError:
        return ""


@blp.context_processor
def page_context():
    return {"navigation": navigation(), "staff": current_user if g.get("jwt_user") is not None else None}


@blp.after_request
def page_headers(response):
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    if request.endpoint != "console.static":
        response.headers["Cache-Control"] = "no-store"
    return response


def error_page(status, message):
    return render_template("console/error.html", status=status, message=message), status


@blp.errorhandler(PageRefused)
def refused(error):
    return error_page(error.status, error.message)


@blp.errorhandler(DomainError)
def domain_error(error):
    return error_page(status_of(error), error.message)


@blp.errorhandler(HTTPException)
def http_error(error):
    return error_page(error.code or 500, error.description or error.name)
