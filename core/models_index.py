"""Imports every module that defines tables, so SQLModel.metadata is complete.

Used by the Alembic environment and by tests that compare migrations with models.
"""
# ruff: noqa: F401

import bot.models
import core.audit
import core.outbox
import core.schedule
import incidents.models
import people.models
import replies.models
import roster.models
