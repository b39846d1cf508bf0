"""DI corpus: clean guitar passages, rendered offline or ingested from a user's folder."""
