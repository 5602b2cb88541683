"""The installed riskscore version, for the modules that record it (manifests, audit logs).

Kept apart from the package face so that no module inside riskscore imports
``riskscore`` itself.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("riskscore")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
