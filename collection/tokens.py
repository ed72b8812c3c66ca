"""Push tokens: one per device, kept while a push permission is in effect."""
import consent
from core.errors import Conflict
from models.base import lock_value, utcnow
from models.device import PushToken

def set_push_token(user, device, token, provider, notifications_enabled):
    """Store the device's token. The same token on another device row of the
    same installation (another account signed in on the same phone) moves
    here, so pushes for the first account stop reaching this phone; held by
    any other installation, it stays there (409 ``token_in_use``)."""
    with consent.consent_held(user):
        consent.require_push(user)
        lock_value("push_token", token)
        holder = PushToken.holder(token)
        if holder is not None and holder.id != device.id:
            if holder.installation_id != device.installation_id:
                raise Conflict("This push token is registered to another installation.", code="token_in_use",
                               details={"token": ["Registered to another installation."]})
            PushToken.delete().where(PushToken.device == holder.id).execute()
        now = utcnow()
        (
            PushToken.insert(device=device, token=token, provider=provider,
                             notifications_enabled=notifications_enabled, created_at=now, updated_at=now)
            .on_conflict(
                conflict_target=[PushToken.device],
                update={PushToken.token: token, PushToken.provider: provider,
                        PushToken.notifications_enabled: notifications_enabled, PushToken.updated_at: now},
            )
            .execute()
        )
    return PushToken.get(PushToken.device == device)


def remove_push_token(device):
    return PushToken.delete().where(PushToken.device == device).execute()


def delete_push_tokens_without_push_consent(user, decisions):
    if not consent.may_hold_push_token(decisions):
        PushToken.delete_for_user(user)
