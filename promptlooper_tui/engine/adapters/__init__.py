"""Clients for LLM endpoints (OpenAI-compatible HTTP APIs)."""
