"""The roles of backoffice principals: support < finance < admin, each including the ones before it.

In the domain because both the store (API keys keep a role) and the backoffice (who may
call what) need it, and the store sits below the backoffice.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Each role includes the ones before it."""

    SUPPORT = "support"
    FINANCE = "finance"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def includes(self, other: Role) -> bool:
        return self.rank >= other.rank
