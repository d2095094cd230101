"""skybroker: an event-driven alert-to-follow-up broker with SkyPortal's API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("skybroker")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
