"""Alembic's home for the schema: env.py and one file per revision under versions/."""
