"""Push providers: the contract (``contract``), Firebase Cloud Messaging
(``fcm``) and the ``log`` provider that sends nothing; ``build_provider``
picks one from the configuration."""
from typing import Mapping

from core.config import ConfigError
from push.providers.contract import (  # noqa: F401  (the names callers use)
    AUTH_ERROR,
    DELIVERED,
    FAILED,
    MAX_BATCH_SIZE,
    RETRY,
    STATUSES,
    TOKEN_INVALID,
    Message,
    PushProvider,
    SendResult,
    mask_token,
)
from push.providers.fcm import FcmProvider, result_for_error  # noqa: F401
from push.providers.log import LogProvider


def build_provider(config: Mapping) -> PushProvider:
    """The provider named by ``PUSH_PROVIDER`` (``log`` by default, or
    ``fcm`` configured by ``FCM_CREDENTIALS_FILE``, ``FCM_PROJECT_ID`` and
    ``FCM_ENDPOINT``). A provider that cannot be built raises
    ``ConfigError`` naming the setting at fault."""
    name = (config.get("PUSH_PROVIDER") or "log").strip().lower()
    if name == "log":
        return LogProvider()
    if name == "fcm":
        try:
            return FcmProvider(
                credentials_file=config.get("FCM_CREDENTIALS_FILE"),
                project_id=config.get("FCM_PROJECT_ID"),
                endpoint=config.get("FCM_ENDPOINT"),
            )
        except ValueError as error:
            raise ConfigError(f"PUSH_PROVIDER=fcm cannot send: {error}") from None
    raise ConfigError(f"PUSH_PROVIDER must be 'log' or 'fcm', got {config.get('PUSH_PROVIDER')!r}")
