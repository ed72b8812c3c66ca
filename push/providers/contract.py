"""Push providers: one interface, one attempt per message.

A provider hands a batch of at most ``MAX_BATCH_SIZE`` messages to a push
service and answers with one ``SendResult`` per message, in the same order.
It never retries: the caller owns backoff, so every attempt it schedules is
exactly one request to the push service and its retry counts mean what they
say.

Result statuses:

* ``DELIVERED``: accepted by the push service; ``message_id`` is set.
* ``TOKEN_INVALID``: the device token is dead or malformed; drop the token.
* ``RETRY``: transient (unavailable, internal, timeout, quota); try again
  later, not before ``retry_after`` seconds when that is set.
* ``FAILED``: this message cannot be sent as it is (for example a payload
  error); do not retry it and keep the token.
* ``AUTH_ERROR``: the sender's configuration is at fault (credentials,
  permissions, APNs/web-push certificates); pause the whole campaign.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional



DELIVERED = "delivered"
TOKEN_INVALID = "token_invalid"
RETRY = "retry"
FAILED = "failed"
AUTH_ERROR = "auth_error"
STATUSES = (DELIVERED, TOKEN_INVALID, RETRY, FAILED, AUTH_ERROR)

MAX_BATCH_SIZE = 500


@dataclass(frozen=True)
class Message:
    """One notification for one device token. ``data`` maps strings to
    strings, as FCM requires; anything else is refused on construction."""

    token: str
    title: str
    body: str
    data: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.token, str) or not self.token:
            raise ValueError("Message.token must be a non-empty string")
        if not isinstance(self.title, str) or not isinstance(self.body, str):
            raise ValueError("Message.title and Message.body must be strings")
        if not isinstance(self.data, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in self.data.items()
        ):
            raise ValueError("Message.data must map strings to strings")


@dataclass(frozen=True)
class SendResult:
    """The outcome of one message. ``retry_after`` (seconds) is only set for
    ``RETRY`` when the service said how long to wait; ``code`` is a short
    lower-case reason such as ``unregistered`` or ``invalid_argument``."""

    status: str
    message_id: Optional[str] = None
    retry_after: Optional[float] = None
    code: Optional[str] = None
    detail: Optional[str] = None

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown SendResult status {self.status!r}")


def mask_token(token: str) -> str:
    """A device token shortened so that logs can correlate it but not use it."""
    if len(token) <= 16:
        return "***"
    return f"{token[:6]}...{token[-4:]}"


class PushProvider:
    """Sends batches of messages; subclasses implement ``_send``.

    ``send`` promises: at most ``MAX_BATCH_SIZE`` messages (``ValueError``
    above that, before anything is sent), exactly one ``SendResult`` per
    message in the same order, one attempt per message, and no exception for
    per-message failures.
    """

    def send(self, messages: list[Message]) -> list[SendResult]:
        messages = list(messages)
        if len(messages) > MAX_BATCH_SIZE:
            raise ValueError(
                f"at most {MAX_BATCH_SIZE} messages per send, got {len(messages)}"
            )
        for message in messages:
            if not isinstance(message, Message):
                raise ValueError(f"expected push.providers.Message, got {type(message).__name__}")
        if not messages:
            return []
        results = self._send(messages)
        if len(results) != len(messages):
            raise RuntimeError(
                f"{type(self).__name__} answered {len(results)} results for {len(messages)} messages"
            )
        return results

    def _send(self, messages: list[Message]) -> list[SendResult]:
        raise NotImplementedError

    def prepare(self) -> Optional[str]:
        """Get what the next send needs (an access token, say); why the
        provider cannot send now, or ``None``. Asked before deliveries are
        claimed, so that a provider that cannot send leaves them pending."""
        return None

    def configuration_fault(self) -> Optional[str]:
        """Why the provider could not be built from its configuration as it
        is now, or ``None``; cheap enough for a readiness probe."""
        return None

    def close(self) -> None:
        """Release what the provider holds; it must not be used afterwards."""
