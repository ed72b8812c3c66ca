"""A local stand-in for FCM HTTP v1 and Google's OAuth2 token endpoint, so
that tests drive the real firebase-admin and google-auth code paths.

``FakeFcmServer`` listens on 127.0.0.1 on a free port and serves:

* ``POST /token``: the JWT-bearer grant. The assertion must be an RS256 JWT
  signed by a service account the server trusts (see
  ``write_service_account``); the answer is a fresh bearer token.
* ``POST /v1/projects/{project}/messages:send``: requires a bearer token the
  server issued and the server's project id, then answers per device token
  from a script (``server.script[token] = ["unavailable", "ok"]``: consumed
  in order, the last behaviour repeats; unscripted tokens get ``"ok"``).

Behaviours, with the error bodies real FCM v1 returns:

``ok``, ``unregistered`` (404), ``sender_id_mismatch`` (403),
``invalid_token`` (400 with a ``message.token`` field violation),
``invalid_token_message`` (400, FcmError only, "not a valid FCM registration
token"), ``invalid_payload`` (400 with a ``message.data[0].value`` field
violation), ``payload_too_large`` (400 without details), ``unavailable``
(503), ``internal`` (500), ``quota`` (429 with QUOTA_EXCEEDED),
``quota_without_code`` (429 RESOURCE_EXHAUSTED without an FCM error code),
``third_party_auth`` (401 THIRD_PARTY_AUTH_ERROR). The 429 answers carry
``Retry-After: server.retry_after_seconds`` unless the behaviour names its
own, as in ``"quota:30"``.

``server.token_reply = (status, content_type, body)`` makes the token
endpoint answer that instead of a grant (a proxy's login page, say).

Everything observed is recorded under a lock: ``requests`` is a list of
``(token, payload, status)`` per send, ``delivered`` a Counter of successful
sends per token, ``token_requests`` the number of token grants and
``bearers_seen`` the bearer tokens presented on sends.
"""
from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MESSAGING_SCOPES = (
    "https://www.googleapis.com/auth/firebase.messaging",
    "https://www.googleapis.com/auth/cloud-platform",
)
DEFAULT_PROJECT = "fake-project"
# google-auth signs service-account assertions for Google's token endpoint
# whatever token_uri the file names.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


def make_service_account(path, token_uri, project_id=DEFAULT_PROJECT):
    """Write a service-account JSON file with a freshly generated RSA key
    whose ``token_uri`` is ``token_uri``; return its contents as a dict."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    suffix = uuid.uuid4().hex[:12]
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": f"push-{suffix}@{project_id}.iam.gserviceaccount.com",
        "client_id": str(uuid.uuid4().int)[:21],
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/push",
        "universe_domain": "googleapis.com",
    }
    with open(path, "w") as handle:
        json.dump(info, handle)
    return info


def _fcm_error(http_status, status, message, error_code=None, violations=None, violations_first=False):
    """An FCM v1 error body: canonical status plus optional FcmError and
    google.rpc.BadRequest details."""
    details = []
    if error_code:
        details.append({"@type": FCM_ERROR_TYPE, "errorCode": error_code})
    if violations:
        bad_request = {
            "@type": BAD_REQUEST_TYPE,
            "fieldViolations": [{"field": f, "description": d} for f, d in violations],
        }
        details.insert(0 if violations_first else len(details), bad_request)
    error = {"code": http_status, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


# behaviour -> (HTTP status, body); success bodies are built per request.
ERROR_RESPONSES = {
    "unregistered": (404, _fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")),
    "sender_id_mismatch": (
        403,
        _fcm_error(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH"),
    ),
    "invalid_token": (
        400,
        _fcm_error(
            400,
            "INVALID_ARGUMENT",
            "Request contains an invalid argument.",
            "INVALID_ARGUMENT",
            violations=[("message.token", "Invalid registration token")],
        ),
    ),
    "invalid_token_message": (
        400,
        _fcm_error(
            400,
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            "INVALID_ARGUMENT",
        ),
    ),
    "invalid_payload": (
        400,
        _fcm_error(
            400,
            "INVALID_ARGUMENT",
            "Invalid value at 'message.data[0].value' (TYPE_STRING), 12",
            violations=[
                ("message.data[0].value", "Invalid value at 'message.data[0].value' (TYPE_STRING), 12")
            ],
        ),
    ),
    "payload_too_large": (400, _fcm_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")),
    "unavailable": (503, _fcm_error(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE")),
    "internal": (500, _fcm_error(500, "INTERNAL", "Internal error encountered.", "INTERNAL")),
    "quota": (
        429,
        _fcm_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Send requests' of service 'fcm.googleapis.com'.",
            "QUOTA_EXCEEDED",
        ),
    ),
    "quota_without_code": (
        429,
        _fcm_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Send requests' of service 'fcm.googleapis.com'.",
        ),
    ),
    "third_party_auth": (
        401,
        _fcm_error(401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service", "THIRD_PARTY_AUTH_ERROR"),
    ),
}
BEHAVIOURS = ("ok", *ERROR_RESPONSES)
UNAUTHENTICATED = _fcm_error(
    401,
    "UNAUTHENTICATED",
    "Request had invalid authentication credentials. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential.",
)


def _b64url_decode(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class FakeFcmServer(ThreadingHTTPServer):
    """The fake FCM and token server; see the module docstring."""

    daemon_threads = True
    # Idle keep-alive connections must not hold up shutdown.
    block_on_close = False
    # send_each opens up to 500 connections at once.
    request_queue_size = 1024

    def __init__(self, project_id=DEFAULT_PROJECT):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.project_id = project_id
        self.retry_after_seconds = 7
        self.send_delay = 0.0  # seconds each send waits before answering
        self.token_reply = None  # (status, content type, body) in place of a grant
        self.script: dict[str, list[str]] = {}
        self.requests: list[tuple[str, dict, int]] = []
        self.request_times: list[tuple[str, float]] = []  # (token, time.monotonic()) per send
        self.delivered: Counter = Counter()
        self.token_requests = 0
        self.bearers_seen: set[str] = set()
        self.issued_tokens: set[str] = set()
        self._trusted_keys = {}
        self._lock = threading.Lock()
        self._thread = None

    @property
    def base_url(self):
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_uri(self):
        return self.base_url + "/token"

    def start(self):
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-fcm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def write_service_account(self, path, project_id=None):
        """A service-account file pointing at this server's token endpoint,
        whose key this server trusts. Returns the path as a string."""
        info = make_service_account(path, self.token_uri, project_id or self.project_id)
        self.trust_service_account(info)
        return str(path)

    def trust_service_account(self, info):
        key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
        with self._lock:
            self._trusted_keys[info["client_email"]] = key.public_key()

    def next_behaviour(self, token):
        with self._lock:
            steps = self.script.get(token)
            if not steps:
                return "ok"
            return steps.pop(0) if len(steps) > 1 else steps[0]

    def sends_to(self, token):
        """How many send requests named ``token``."""
        with self._lock:
            return sum(1 for seen, _, _ in self.requests if seen == token)

    # Called from handler threads.

    def grant_token(self, form):
        """(status, body) for a token request."""
        if form.get("grant_type") != JWT_BEARER_GRANT or not form.get("assertion"):
            return 400, {"error": "unsupported_grant_type"}
        try:
            header_part, claims_part, signature_part = form["assertion"].split(".")
            header = json.loads(_b64url_decode(header_part))
            claims = json.loads(_b64url_decode(claims_part))
            signature = _b64url_decode(signature_part)
        except ValueError:
            return 400, {"error": "invalid_grant", "error_description": "malformed assertion"}
        with self._lock:
            public_key = self._trusted_keys.get(claims.get("iss"))
        if header.get("alg") != "RS256" or public_key is None:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        try:
            public_key.verify(
                signature,
                f"{header_part}.{claims_part}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        now = time.time()
        scopes = set(str(claims.get("scope", "")).split())
        issued_at, expires_at = claims.get("iat"), claims.get("exp")
        if (
            claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, self.token_uri)
            or not isinstance(issued_at, (int, float))
            or not isinstance(expires_at, (int, float))
            or issued_at > now + 60
            or expires_at <= now
            or not scopes & set(MESSAGING_SCOPES)
        ):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT claims."}
        access_token = "ya29.fake-" + uuid.uuid4().hex
        with self._lock:
            self.token_requests += 1
            self.issued_tokens.add(access_token)
        return 200, {"access_token": access_token, "expires_in": 3600, "token_type": "Bearer"}

    def answer_send(self, project, authorization, payload):
        """(status, body, extra headers) for a messages:send request."""
        if self.send_delay:
            time.sleep(self.send_delay)
        bearer = authorization[len("Bearer "):] if authorization.startswith("Bearer ") else None
        with self._lock:
            if bearer:
                self.bearers_seen.add(bearer)
            authorized = bearer in self.issued_tokens
        message = payload.get("message") if isinstance(payload, dict) else None
        token = message.get("token") if isinstance(message, dict) else None
        if not authorized:
            status, body, headers = 401, UNAUTHENTICATED, {}
        elif project != self.project_id:
            status, body, headers = 403, _fcm_error(
                403, "PERMISSION_DENIED", "Permission 'cloudmessaging.messages.create' denied"
            ), {}
        elif not token:
            status, body, headers = 400, _fcm_error(
                400,
                "INVALID_ARGUMENT",
                "Recipient of the message is not set.",
                "INVALID_ARGUMENT",
                violations=[("message", "Recipient of the message is not set.")],
                violations_first=True,
            ), {}
        else:
            status, body, headers = self._scripted(token)
        with self._lock:
            self.requests.append((token, payload, status))
            self.request_times.append((token, time.monotonic()))
            if status == 200:
                self.delivered[token] += 1
        return status, body, headers

    def _scripted(self, token):
        name, _, argument = self.next_behaviour(token).partition(":")
        if name == "ok":
            return 200, {"name": f"projects/{self.project_id}/messages/0:{uuid.uuid4().hex}"}, {}
        if name not in ERROR_RESPONSES:
            raise ValueError(f"unknown fake FCM behaviour {name!r}; known: {', '.join(BEHAVIOURS)}")
        status, body = ERROR_RESPONSES[name]
        headers = {}
        if status == 429:
            headers["Retry-After"] = argument or str(self.retry_after_seconds)
        return status, body, headers


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Lets keep-alive connections the client abandons end on their own.
    timeout = 10
    server: FakeFcmServer

    def log_message(self, format, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path == "/token" and self.server.token_reply is not None:
            status, content_type, body = self.server.token_reply
            self._reply_raw(status, content_type, body.encode())
            return
        if self.path == "/token":
            form = {key: values[0] for key, values in parse_qs(raw.decode()).items()}
            status, body = self.server.grant_token(form)
            self._reply(status, body)
            return
        prefix, suffix = "/v1/projects/", "/messages:send"
        if self.path.startswith(prefix) and self.path.endswith(suffix):
            project = self.path[len(prefix):-len(suffix)]
            try:
                payload = json.loads(raw or b"null")
            except ValueError:
                self._reply(400, _fcm_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."))
                return
            status, body, headers = self.server.answer_send(
                project, self.headers.get("Authorization", ""), payload
            )
            self._reply(status, body, headers)
            return
        self._reply(404, _fcm_error(404, "NOT_FOUND", f"No route for {self.path}"))

    def _reply(self, status, body, headers=None):
        self._reply_raw(status, "application/json; charset=UTF-8", json.dumps(body).encode(), headers)

    def _reply_raw(self, status, content_type, data, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
