"""Every model family; importing this package registers them all."""

from . import flextok  # noqa: F401
from . import tadicodec  # noqa: F401
