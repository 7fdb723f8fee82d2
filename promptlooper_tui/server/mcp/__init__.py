"""The MCP server: one tool per Workbench operation, typed inputs, structured (JSON) results.

Served over stdio by `promptlooper mcp` and over streamable HTTP by `promptlooper serve` (port
8401, behind the daemon's bearer token); `app.py` builds both. Importing it imports the MCP SDK
(~1 s), so only the commands that serve MCP import it. The tools live by concern
(`experiment_tools`, `sweep_tools`, `run_tools`, `setup_tools`), the resources in `resources`.
"""
