"""lbi: learn-by-interact — let an LLM agent learn a new environment by interacting with it."""

__version__ = "0.1.0"
