"""tau2-bench customer-service domains: policy and tools as docs, tool calls as actions, a simulated customer."""
