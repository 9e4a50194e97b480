"""Imports every module that defines tables, so SQLModel.metadata is complete.

Used by the Alembic environment and by tests that compare migrations with models.
"""

import bot.models  # noqa: F401
import core.audit
import core.outbox
import core.schedule  # noqa: F401
import people.models  # noqa: F401
