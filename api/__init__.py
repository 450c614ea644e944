"""tactful's HTTP service, LLM client, embedded LLM manager and CLI."""
