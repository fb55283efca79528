"""USE_DEFAULT: a typed "not given" for arguments whose None means something else."""

from __future__ import annotations

import enum
from typing import Final, Literal, TypeAlias


class UseDefault(enum.Enum):
    """The type of :data:`USE_DEFAULT` (one member, so ``x is USE_DEFAULT`` narrows it,
    as httpx's ``USE_CLIENT_DEFAULT`` does)."""

    DEFAULT = "default"

    def __repr__(self) -> str:
        return "USE_DEFAULT"


USE_DEFAULT: Final = UseDefault.DEFAULT
"""Passed (or left as the default) where ``None`` is a real value: "use what the
connector's config says". ``run(..., timeout=None)`` means no timeout;
``run(..., timeout=USE_DEFAULT)`` means the config's ``timeout``."""

Default: TypeAlias = Literal[UseDefault.DEFAULT]
