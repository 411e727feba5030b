"""Outbound webhooks: a company's own systems hear, signed and retried, what happened to its
problems (docs/webhooks.md). A subscriber: receivers of the domain signals enqueue deliveries
through the outbox, and the worker sends them."""
