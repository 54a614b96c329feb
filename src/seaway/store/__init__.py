"""Metadata (SQLAlchemy + Alembic) and content-addressed blobs (BLAKE3, local or fsspec)."""
