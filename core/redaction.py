"""No log line carries personal data (README, "Logs"): a filter on
every log handler rewrites each record before it is written. It is the
second line of defence; the first is not logging such values at all (the
error handlers log no database messages)."""
import logging
import re

import flask.logging

# PostgreSQL's DETAIL quotes the offending row or key ("Key (token)=(...)").
DATABASE_DETAIL = re.compile(r"DETAIL:[^\n]*|Key \([^\n]*\)=\([^\n]*|Failing row contains[^\n]*")
EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# Push tokens, JWTs' parts, signed links: 40 or more word characters with a
# digit and a letter. Shorter ids (a request id, a UUID) stay readable.
TOKEN = re.compile(r"(?<![\w:-])(?=[\w:-]*\d)(?=[\w:-]*[^\W\d_])[\w:-]{40,}(?![\w-])")
PHONE = re.compile(r"(?<![\w.+])(?:\+\d[\d ()-]{5,20}\d|\d{10,15})(?![\w.])")
# Four or more decimals: a latitude or longitude, as reported or coarsened.
COORDINATE = re.compile(r"(?<![\w.])-?\d{1,3}\.\d{4,}(?![\w.])")

REPLACEMENTS = (
    (DATABASE_DETAIL, "DETAIL: [redacted]"),
    (EMAIL, "[email]"),
    (TOKEN, "[token]"),
    (PHONE, "[phone]"),
    (COORDINATE, "[coordinate]"),
)


def redact(text):
    for pattern, replacement in REPLACEMENTS:
        text = pattern.sub(replacement, text)
    return text


class RedactPersonalData(logging.Filter):
    """Rewrites a record's message, traceback and stack in place, so every
    formatter downstream (plain, JSON, pytest's) sees only the redacted text.
    peewee's query records lose their parameters: those are the values."""

    _traceback = logging.Formatter()

    def filter(self, record):
        if record.name.startswith("peewee") and isinstance(record.msg, tuple) and len(record.msg) == 2:
            sql, params = record.msg
            record.msg, record.args = f"{sql} [{len(params or ())} parameters]", ()
        try:
            message = record.getMessage()
        except Exception:  # a malformed call must still be logged, and redacted
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = redact(message), ()
        if record.exc_info:
            record.exc_text = record.exc_text or self._traceback.formatException(record.exc_info)
            record.exc_info = None  # a formatter that renders exc_info itself would undo the redaction
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in record.__dict__.items():  # fields given with ``extra=``, as JSON lines show them
            if name not in STANDARD_ATTRIBUTES and isinstance(value, str):
                record.__dict__[name] = redact(value)
        return True


STANDARD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
REDACT = RedactPersonalData()


def all_handlers():
    """Every handler there is now: the root logger's and any other logger's
    (gunicorn's error and access logs, huey's), Flask's default handler and
    Python's last resort."""
    loggers = [logging.getLogger(), *(logger for logger in logging.Logger.manager.loggerDict.values()
                                      if isinstance(logger, logging.Logger))]
    handlers = {handler for logger in loggers for handler in logger.handlers}
    handlers.add(flask.logging.default_handler)
    if logging.lastResort is not None:
        handlers.add(logging.lastResort)
    return handlers


def install():
    """Put the filter on every handler there is now (``all_handlers``). Idempotent."""
    for handler in all_handlers():
        if REDACT not in handler.filters:
            handler.addFilter(REDACT)


def register(app):
    install()
