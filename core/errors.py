"""Domain errors: what went wrong, in the API's codes and words. Domain
code raises them; ``core.http`` alone maps each class to a status code and
the error envelope."""


class DomainError(Exception):
    """An error a view or domain function raises; its class says which kind
    (``core.http`` answers each kind with its status)."""

    code = "bad_request"
    message = "The request cannot be served."

    def __init__(self, message=None, *, code=None, details=None, headers=None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.code = code or self.code
        self.details = details or {}
        self.headers = headers or {}


class BadRequest(DomainError):
    pass


class Gone(DomainError):
    code, message = "gone", "This is no longer available."


class NotFound(DomainError):
    code, message = "not_found", "No such resource."


class Conflict(DomainError):
    code, message = "conflict", "The request conflicts with the current state."


class Forbidden(DomainError):
    code, message = "forbidden", "You may not do this."


class Unauthorized(DomainError):
    code, message = "unauthorized", "Authentication failed."


class ServiceUnavailable(DomainError):
    code, message = "service_unavailable", "A part of the service is unavailable."


class ValidationFailed(DomainError):
    code, message = "validation_error", "The request has invalid fields."

    def __init__(self, details, message=None):
        super().__init__(message, details=details)


class ConsentRequired(DomainError):
    code = "consent_required"

    def __init__(self, permission, reason=None):
        details = {"permission": permission}
        if reason:
            details["reason"] = reason
        super().__init__(f"Consent for '{permission}' is not in effect.", details=details)


