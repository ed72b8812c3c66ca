"""The ``log`` provider: sends nothing, records and logs what it would send."""
from __future__ import annotations

import logging
import uuid
from collections import deque



from push.providers.contract import DELIVERED, Message, PushProvider, SendResult, mask_token

# The name operators filter on, whichever module the provider lives in.
log = logging.getLogger("push.providers")


class LogProvider(PushProvider):
    """Sends nothing. Keeps the last ``capacity`` messages in ``self.sent``
    (oldest dropped first) and logs one line per message with the token
    masked and without the body or data values. Every message is
    ``DELIVERED`` with a synthetic message id."""

    def __init__(self, capacity: int = 10_000):
        self.sent: deque[Message] = deque(maxlen=capacity)

    def _send(self, messages):
        results = []
        for message in messages:
            message_id = f"log/{uuid.uuid4().hex}"
            self.sent.append(message)
            log.info(
                "push not sent (log provider): id=%s token=%s title=%r data_keys=%s",
                message_id,
                mask_token(message.token),
                message.title,
                sorted(message.data),
            )
            results.append(SendResult(DELIVERED, message_id=message_id))
        return results
