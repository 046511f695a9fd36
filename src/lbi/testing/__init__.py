"""Test doubles shipped inside the package, so tests and demos run offline (e.g. an MCP server)."""
