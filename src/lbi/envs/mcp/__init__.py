"""Any MCP server as an environment, and the SQLite library server + suite lbi ships."""
