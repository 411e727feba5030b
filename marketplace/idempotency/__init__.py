"""Safe retries of the API's actions: a client's ``Idempotency-Key`` and the response it got
(docs/api.md, "Idempotency")."""
