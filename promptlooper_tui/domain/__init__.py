"""Pydantic models and errors shared by every layer. No I/O happens here."""
