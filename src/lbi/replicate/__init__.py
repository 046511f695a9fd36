"""`lbi experiment`: the paper's tables for any model and environment, from one command."""
