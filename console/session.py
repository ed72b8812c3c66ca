"""Signing in and out of the console. The session is the API's
(``auth.sessions``); its access token travels in an HttpOnly,
SameSite=Strict cookie limited to ``/console``. The cookie is renewed
while it is used (flask-jwt-extended's implicit refresh): an answer to a
request whose token has less than a third of its lifetime left carries a
new token for the same session, unless the session was revoked meanwhile.
When the token expires all the same the operator signs in again (the next
page redirects to the sign-in and back): no refresh token is kept in the
browser."""
import time

from flask import current_app, redirect, render_template, request, url_for
from flask_jwt_extended import get_jwt, set_access_cookies, unset_access_cookies

from auth.login import authenticate, login_limits
from auth.sessions import close_session, open_session, renew_access
from console.web import PageRefused, blp, safe_next, staff_page

# A token is renewed once less than this share of its lifetime is left.
RENEW_WHEN_LEFT = 1 / 3

# One answer for an unknown address, a wrong password and a non-staff
# account: the sign-in must not tell which accounts are staff.
REFUSAL = "Wrong email or password."


def _form_email():
    email = request.form.get("email")
    return email if email else None


def _same_origin():
    """A sign-in posted from another site is refused (login CSRF). Browsers
    say where a request comes from in ``Sec-Fetch-Site``, and older ones in
    ``Origin`` (``null`` under our no-referrer policy, so only a named
    origin can be compared)."""
    if request.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site"):
        return False
    origin = request.headers.get("Origin")
    return origin in (None, "null") or origin == request.host_url.rstrip("/")


def _insecure_production():
    """In production the session cookie is Secure: reached over plain HTTP,
    the browser drops it and the sign-in seems to do nothing. Say so."""
    return current_app.config["APP_ENV"] == "production" and not request.is_secure


@blp.context_processor
def sign_in_context():
    return {"insecure_production": request.endpoint in ("console.sign_in", "console.sign_in_submit") and _insecure_production()}


@blp.get("/sign-in")
def sign_in():
    return render_template("console/sign_in.html", next=request.args.get("next", ""), error=None)


@blp.post("/sign-in")
@login_limits(_form_email)
def sign_in_submit():
    if not _same_origin():
        raise PageRefused(403, "Sign in from the console's own page.")
    email, password = request.form.get("email", ""), request.form.get("password", "")
    next_page = request.form.get("next", "")
    user = authenticate(email, password) if email and password and len(email) <= 254 and len(password) <= 1024 else None
    if user is None or not user.is_staff:
        return render_template("console/sign_in.html", next=next_page, error=REFUSAL, email=email), 401
    tokens = open_session(user)
    response = redirect(safe_next(next_page), code=303)
    set_access_cookies(response, tokens["access_token"])
    return response


@blp.post("/sign-out")
@staff_page()
def sign_out():
    close_session(get_jwt())
    response = redirect(url_for("console.sign_in"), code=303)
    unset_access_cookies(response)
    return response


@blp.get("/session")
@staff_page()
def session_alive():
    """204 while the session lives (the script asks before posting a form;
    the answer renews the cookie like any other), else 401."""
    return "", 204


@blp.get("/")
def index():
    return redirect(url_for("console.overview"))



@blp.after_request
def renew_session_cookie(response):
    """The implicit refresh: a page or fragment answered to a signed-in
    operator whose token is in the last third of its lifetime sets a new
    one, so that a session in use does not end mid-form."""
    try:
        payload = get_jwt()
    except RuntimeError:  # no token was checked: the sign-in, a static file
        return response
    if payload.get("type") != "access" or "sid" not in payload or "exp" not in payload:
        return response
    lifetime = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()
    if payload["exp"] - time.time() > lifetime * RENEW_WHEN_LEFT:
        return response
    token = renew_access(payload)  # None once the session is revoked (a sign-out, this very request's included)
    if token is not None:
        set_access_cookies(response, token)
    return response
