"""The ``fcm`` provider: Firebase Cloud Messaging through firebase-admin's
``messaging.send_each``, one HTTP attempt per message."""
from __future__ import annotations

import email.utils
import functools
import itertools
import logging
import os
import threading
import time
import uuid
from typing import Optional
from urllib.parse import urlsplit

import firebase_admin
import google.auth.exceptions
import requests.adapters
from firebase_admin import credentials as firebase_credentials
from firebase_admin import exceptions as firebase_exceptions
from firebase_admin import messaging
from google.auth.credentials import TokenState
from google.auth.transport import requests as google_auth_requests
from urllib3.util.retry import Retry


from push.providers.contract import (
    AUTH_ERROR,
    DELIVERED,
    FAILED,
    MAX_BATCH_SIZE,
    RETRY,
    TOKEN_INVALID,
    PushProvider,
    SendResult,
)

log = logging.getLogger("push.providers")

DEFAULT_FCM_ENDPOINT = "https://fcm.googleapis.com"
DEFAULT_TIMEOUT_SECONDS = 30

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
TOKEN_FIELD = "message.token"


# urllib3's retry policy for FCM sends: a single attempt. firebase-admin's
# default would repeat 500/503 up to four times with backoff and also honour
# Retry-After on 429/503 by sleeping inside send_each.
NO_RETRIES = Retry(total=0, redirect=0, raise_on_status=False, respect_retry_after_header=False)

_app_counter = itertools.count(1)


class FcmProvider(PushProvider):
    """Sends through Firebase Cloud Messaging with firebase-admin's
    ``messaging.send_each``.

    ``credentials_file`` is a service-account JSON file (its ``token_uri`` is
    used as is); when omitted, ``GOOGLE_APPLICATION_CREDENTIALS`` names it.
    ``project_id`` defaults to the one in the credentials. ``endpoint`` is a
    base URL that replaces ``https://fcm.googleapis.com``. Each instance owns
    its own named firebase app, so several providers can coexist; ``close``
    deletes it.

    Every message is one HTTP request: firebase-admin's HTTP retries and
    google-auth's refresh-and-resend on 401 are switched off, and the access
    token is refreshed once per batch rather than once per worker thread.
    """

    def __init__(
        self,
        credentials_file: Optional[str] = None,
        project_id: Optional[str] = None,
        endpoint: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ):
        path = credentials_file or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if not path:
            raise ValueError(
                "the fcm push provider needs a service-account file: "
                "set FCM_CREDENTIALS_FILE or GOOGLE_APPLICATION_CREDENTIALS"
            )
        base_url = _endpoint_base(endpoint)
        self._credentials_path = path
        self._checked_file = _file_identity(path)
        certificate = _load_certificate(path)
        options = {"httpTimeout": timeout}
        if project_id:
            options["projectId"] = project_id
        name = f"push-provider-{next(_app_counter)}-{uuid.uuid4().hex[:8]}"
        self._app = firebase_admin.initialize_app(certificate, options, name=name)
        try:
            self.project_id = self._app.project_id
            service = messaging._get_messaging_service(self._app)
            _point_service_at(service, base_url, self.project_id)
        except Exception:
            firebase_admin.delete_app(self._app)
            raise
        self.endpoint = base_url
        self._credential = certificate.get_credential()
        self._token_lock = threading.Lock()
        self._token_request = functools.partial(google_auth_requests.Request(), timeout=timeout)

    def _send(self, messages):
        failure = self._refresh_access_token()
        if failure is not None:
            return [failure] * len(messages)
        # Devices register FCM registration tokens, which FCM still accepts
        # as ``token``; firebase-admin 7.7 deprecates that field in favour of
        # Firebase installation ids (``fid``), a migration of the apps' own.
        sdk_messages = [
            messaging.Message(
                token=message.token,
                notification=messaging.Notification(title=message.title, body=message.body),
                data=dict(message.data),
            )
            for message in messages
        ]
        try:
            batch = messaging.send_each(sdk_messages, app=self._app)
        except firebase_exceptions.FirebaseError as error:
            # The SDK gave up on the batch as a whole after some requests may
            # have gone out; resending could duplicate, so nothing is retried.
            result = SendResult(FAILED, code=_code_of(error), detail=str(error))
            return [result] * len(messages)
        return [
            SendResult(DELIVERED, message_id=response.message_id)
            if response.success
            else result_for_error(response.exception)
            for response in batch.responses
        ]

    def prepare(self):
        failure = self._refresh_access_token()
        return None if failure is None else f"{failure.code}: {failure.detail}"

    def configuration_fault(self):
        # Parsing the key takes about 100 ms: only a changed file is read again.
        try:
            identity = _file_identity(self._credentials_path)
            if identity != self._checked_file:
                _load_certificate(self._credentials_path)
                self._checked_file = identity
        except ValueError as error:
            return str(error)
        return None

    def _refresh_access_token(self) -> Optional[SendResult]:
        """Fetch a fresh access token if needed; a result for every message
        of the batch when that fails. Without this, each of the SDK's worker
        threads would fetch its own token when the cached one has expired."""
        with self._token_lock:
            if self._credential.token_state == TokenState.FRESH:
                return None
            try:
                self._credential.refresh(self._token_request)
            except google.auth.exceptions.RefreshError as error:
                if error.retryable:
                    return SendResult(RETRY, code="token_refresh", detail=str(error))
                return SendResult(AUTH_ERROR, code="token_refresh", detail=str(error))
            except google.auth.exceptions.TransportError as error:
                return SendResult(RETRY, code="token_endpoint_unavailable", detail=str(error))
        return None

    def close(self):
        firebase_admin.delete_app(self._app)


def _file_identity(path: str) -> tuple:
    try:
        stat = os.stat(path)
    except OSError as error:
        raise ValueError(f"FCM_CREDENTIALS_FILE {path!r} cannot be read: {error.strerror}") from None
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _load_certificate(path: str) -> firebase_credentials.Certificate:
    try:
        return firebase_credentials.Certificate(path)
    except OSError as error:
        raise ValueError(f"FCM_CREDENTIALS_FILE {path!r} cannot be read: {error.strerror}") from None
    except ValueError as error:
        raise ValueError(f"FCM_CREDENTIALS_FILE {path!r} is not a service-account key file: {error}") from None


def _endpoint_base(endpoint: Optional[str]) -> str:
    base = (endpoint or DEFAULT_FCM_ENDPOINT).rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"FCM_ENDPOINT must be an http(s) base URL, got {endpoint!r}")
    return base


def _point_service_at(service, base_url: str, project_id: str) -> None:
    """Send to ``base_url`` with one attempt per message.

    firebase-admin 7.x has no public option for the FCM base URL or for the
    retry policy of its HTTP session. Its messaging service keeps the send
    URL in ``_fcm_url`` and its authorized session in ``_client.session``;
    those are the seams used here. They are checked first so that an SDK
    change stops start-up instead of silently sending to production or
    retrying behind the caller's back.
    """
    client = getattr(service, "_client", None)
    session = getattr(client, "session", None)
    if not isinstance(getattr(service, "_fcm_url", None), str) or session is None:
        raise RuntimeError(
            f"firebase-admin {firebase_admin.__version__} no longer exposes the messaging "
            "service's send URL and session; FCM_ENDPOINT and the retry policy cannot be applied"
        )
    service._fcm_url = f"{base_url}/v1/projects/{project_id}/messages:send"
    # The trailing slash keeps http://host:80 from also matching http://host:8080;
    # a longer prefix wins over the SDK's own adapters.
    session.mount(
        base_url + "/",
        requests.adapters.HTTPAdapter(
            pool_connections=1, pool_maxsize=MAX_BATCH_SIZE, max_retries=NO_RETRIES
        ),
    )
    # google-auth would refresh the token and resend on 401, up to twice per
    # message; an FCM 401 (THIRD_PARTY_AUTH_ERROR included) is reported as is.
    session._refresh_status_codes = ()


def result_for_error(error: Exception) -> SendResult:
    """Map a firebase-admin messaging exception to a ``SendResult``.

    Unregistered tokens, sender-id mismatches and invalid-argument errors
    about ``message.token`` drop the token; other invalid arguments fail the
    message only. Unavailable, internal, deadline and any resource-exhausted
    error are retried, honouring ``Retry-After``. 401/403 (third-party auth,
    bad credentials, missing permission) are configuration faults.
    """
    code = _code_of(error)
    detail = str(error)
    if isinstance(error, (messaging.UnregisteredError, messaging.SenderIdMismatchError)):
        return SendResult(TOKEN_INVALID, code=code, detail=detail)
    if isinstance(error, firebase_exceptions.InvalidArgumentError):
        if _is_token_error(error):
            return SendResult(TOKEN_INVALID, code=code, detail=detail)
        return SendResult(FAILED, code="invalid_argument", detail=detail)
    if isinstance(
        error, (firebase_exceptions.UnauthenticatedError, firebase_exceptions.PermissionDeniedError)
    ):
        return SendResult(AUTH_ERROR, code=code, detail=detail)
    if isinstance(
        error,
        (
            firebase_exceptions.UnavailableError,
            firebase_exceptions.InternalError,
            firebase_exceptions.DeadlineExceededError,
            firebase_exceptions.ResourceExhaustedError,
        ),
    ):
        return SendResult(RETRY, retry_after=_retry_after(error), code=code, detail=detail)
    return SendResult(FAILED, code=code, detail=detail)


def _error_body(error) -> dict:
    """The ``error`` object of a Google API error response, or ``{}``."""
    response = getattr(error, "http_response", None)
    if response is None:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    inner = body.get("error") if isinstance(body, dict) else None
    return inner if isinstance(inner, dict) else {}


def _details(error, type_url: str) -> list[dict]:
    details = _error_body(error).get("details")
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, dict) and d.get("@type") == type_url]


def _code_of(error) -> str:
    """FCM's own error code when the response has one, else the canonical one."""
    for detail in _details(error, FCM_ERROR_TYPE):
        if isinstance(detail.get("errorCode"), str):
            return detail["errorCode"].lower()
    code = getattr(error, "code", None)
    return str(code).lower() if code else type(error).__name__.lower()


def _is_token_error(error) -> bool:
    """Whether an INVALID_ARGUMENT is about the registration token.

    Payload errors name the offending field in ``google.rpc.BadRequest``
    field violations; a violation on ``message.token`` condemns the token.
    FCM also reports a malformed token with no field violations and the
    message "The registration token is not a valid FCM registration token".
    Anything else (including an error without details, as for an oversized
    payload) is not the token's fault.
    """
    fields = [
        violation.get("field")
        for detail in _details(error, BAD_REQUEST_TYPE)
        for violation in detail.get("fieldViolations") or []
        if isinstance(violation, dict)
    ]
    if fields:
        return TOKEN_FIELD in fields
    message = _error_body(error).get("message")
    return isinstance(message, str) and "registration token" in message.lower()


def _retry_after(error) -> Optional[float]:
    """Seconds from the response's ``Retry-After`` header (delta-seconds or
    HTTP date), or ``None`` when absent or unreadable."""
    response = getattr(error, "http_response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())
