"""Imports every module that defines tables, so ``SQLModel.metadata`` is complete.

The kernel (``core``) knows no domain, so the full list lives here, beside the
composition root: ``bot.app`` imports it before anything touches the database, the
Alembic environment (``core/migrations/env.py``) imports it so autogenerate sees every
table, and ``tests/core/test_db.py`` compares the migrations with it.
"""
# ruff: noqa: F401

import accounts.models
import bot.models
import bot.web.models
import checks.models
import core.audit
import core.outbox
import core.schedule
import incidents.alert_models
import incidents.models
import incidents.paging_models
import people.models
import replies.models
import roster.models
import watch.models
