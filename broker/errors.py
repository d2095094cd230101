"""Domain exceptions. The API's base handler maps each to an HTTP status in one place."""


class BrokerError(Exception):
    """Base class of every error skybroker reports to a user."""

    status = 400

    def __init__(self, message: str, field: str | None = None, errors: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.errors = errors  # several fields' messages at once (a facility's validation), field -> message

    def envelope_data(self) -> dict:
        """The error envelope's ``data``: SkyPortal's ``{}``, plus (our addition) the field the message
        names and, where a facility refused several, each field's message: what a form shows beside them."""
        out: dict = {}
        if self.field:
            out["field"] = self.field
        if self.errors:
            out["errors"] = dict(self.errors)
        return out


class ValidationError(BrokerError):
    """Bad input: wrong type, missing or unknown field, out-of-range value (400)."""

    status = 400


class NotFound(BrokerError):
    """No such row, or one the caller may not see (404)."""

    status = 404


class NoSuchRow(NotFound):
    """A row that does not exist or that the caller may not see, where SkyPortal's handler answers 400
    ("Could not retrieve …"): the same answer for both, so nothing is revealed."""

    status = 400


class Unauthenticated(BrokerError):
    """No credentials, or unknown ones (401)."""

    status = 401


class PermissionDenied(BrokerError):
    """Authenticated, but lacking the ACL or group role needed (403)."""

    status = 403


class Conflict(BrokerError):
    """Would duplicate a unique row (400, as SkyPortal answers)."""

    status = 400


class ServiceUnavailable(BrokerError):
    """A facility did not answer (after retries) or answered 5xx (503)."""

    status = 503
