"""Events out: the transactional outbox and the registry of event types."""
