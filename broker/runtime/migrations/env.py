"""Alembic environment: runs migrations on the connection skybroker hands it."""

from alembic import context

import models

target_metadata = models.Base.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("skybroker runs migrations through broker.runtime.db.upgrade(), which passes a connection")
    from models.objects import not_a_partition  # (autogenerate: photometry's partitions are not models)

    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True,
                      include_name=not_a_partition)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()
