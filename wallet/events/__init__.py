"""Events out: the transactional outbox and its relay to the webhook deliveries."""
