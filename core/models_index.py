"""Imports every module that defines tables, so SQLModel.metadata is complete.

Used by the Alembic environment and by tests that compare migrations with models.
"""

import core.audit  # noqa: F401
