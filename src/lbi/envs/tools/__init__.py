"""What tool-use environments (tau2, mcp, your own) share, one job a module:

- `actions`: the action format, one JSON object `{"name": ..., "arguments": {...}}`, and its parser;
- `schema`: tool schemas as prompt text, as a grammar, and as the environment's action space;
- `steps`: the guards every tool env's `step` opens with.
"""
