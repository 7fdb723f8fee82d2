"""The store: SQLite schema, migrations, one batching writer and typed reads."""
