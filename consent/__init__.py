"""Consent: what callers ask and change. The rules are in ``rules`` (their
SQL forms in ``sql``), what they read is loaded by ``subjects``, changes are
made by ``changes`` and recorded in ``ledger``, and ``effects`` holds what a
withdrawal removes (docs/architecture.md). Callers use the names below."""
from consent.changes import (  # noqa: F401
    lapse_stale_grants,
    publish_policy,
    record_guardian_consent,
    reevaluate,
    revoke_guardian_consent,
    set_consents,
    withdraw_grant,
)
from consent.rules import (  # noqa: F401
    CURRENT_GRANT,
    NOT_GRANTED,
    REFUSING_REASONS,
    RULES,
    SUPERSEDED,
    USER_SOURCES,
    Decision,
    State,
    Subject,
    adulthood_cutoff,
    campaign_permissions,
    decide,
    decide_all,
    grant_status,
    is_minor,
    may_hold_push_token,
)
from consent.sql import SqlSubject, effective_sql, refusal_sql, statistics_sql  # noqa: F401
from consent.subjects import (  # noqa: F401
    check,
    close_cache,
    consent_held,
    device_decision,
    device_mismatches,
    forget,
    is_effective,
    load_subject,
    load_subjects,
    lock_user,
    open_cache,
    overview,
    require,
    require_push,
    staff_overview,
    subject_for,
    user_locks,
)
