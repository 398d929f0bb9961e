"""Cross-cutting web plumbing: sessions, logging, errors, CSRF, security headers."""
from .bodylimit import init_body_limits, large_body
from .confirm import confirm_page, confirmed
from .errors import abort_with, error_response, init_error_handlers
from .jsonbody import SafeJSONProvider
from .logs import configure_logging, init_request_ids
from .request import Request
from .sessions import MongoSessionInterface, rotate_session

__all__ = ["init_body_limits", "large_body", "confirm_page", "confirmed", "abort_with", "error_response",
           "init_error_handlers",
           "configure_logging", "init_request_ids", "MongoSessionInterface", "rotate_session", "SafeJSONProvider", "Request"]
