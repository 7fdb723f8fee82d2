"""PromptLooper: a self-hosted workbench for tuning LLM pipelines."""

__version__ = "0.1.0"
