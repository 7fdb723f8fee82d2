"""The sweep engine: endpoint adapters, concurrency control and scorers."""
