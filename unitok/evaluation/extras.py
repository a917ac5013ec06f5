"""Optional heavy dependencies of the evaluation harness and data sources.

A metric or data source that needs an optional package calls `require("pesq", extra="eval-speech")`; when the
package is missing it raises `MissingExtraError` naming the extra to install, and the harness records the metric as
skipped (with that message) and goes on with the rest.
"""

import importlib


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message says which unitok extra provides it."""


def require(module: str, extra: str, package: str | None = None):
    """Import `module` or raise `MissingExtraError` telling the user to `pip install 'unitok[<extra>]'`."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{package or module} is needed for this metric or data source; install it with "
            f"`pip install 'unitok[{extra}]'` (or `pip install {package or module}`)."
        ) from error


__all__ = ["MissingExtraError", "require"]
