"""Alembic migrations of the store (applied with :func:`dxassist.store.upgrade_to_head`)."""
