"""Where everything is stored: SQLAlchemy models, the database and its sessions, an
instance's row, state and cache as commands hold them, number sequences, Alembic
migrations. Nothing here deserialises workflow state for a page."""
