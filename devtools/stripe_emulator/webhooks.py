"""Webhook signing and delivery.

Each (event, endpoint) pair is a queued delivery. Deliveries for the same object and
endpoint go out strictly in creation order: a later one waits while an earlier one is
being retried. Failures (non-2xx, connection errors, timeouts) are retried with
exponential backoff, ``retry_base * 2**(attempt-1)`` seconds, up to ``max_attempts``.
HTTP calls are made without the store lock, so a receiver may call the API back.
"""

import hashlib
import hmac
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request

log = logging.getLogger(__name__)


def signature_header(payload, secret, timestamp):
    """Stripe's ``Stripe-Signature``: ``t=<ts>,v1=HMAC_SHA256(secret, "<ts>.<payload>")``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


class Dispatcher:
    def __init__(self, store, *, retry_base=1.0, max_attempts=8, timeout=5.0):
        self.store = store
        self.retry_base = retry_base
        self.max_attempts = max_attempts
        self.timeout = timeout
        self._pass_lock = threading.Lock()  # one delivery pass at a time: nothing sent twice
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def pending(self):
        with self.store.lock:
            return [
                {
                    "event": delivery["event"],
                    "type": self.store.objects[delivery["event"]]["type"],
                    "endpoint": delivery["endpoint"],
                    "attempts": delivery["attempts"],
                    "next_attempt": delivery["next_attempt"],
                    "last_status": delivery["last_status"],
                    "last_error": delivery["last_error"],
                }
                for delivery in self.store.deliveries
            ]

    def _queue(self, delivery):
        """Deliveries in one queue go out in creation order. With ``shuffle_deliveries`` each
        delivery is a queue of its own: Stripe does not guarantee delivery order."""
        key = "event" if self.store.settings["shuffle_deliveries"] else "object"
        return (delivery["endpoint"], delivery[key])

    def _heads(self):
        """The oldest queued delivery of each queue (in random order when shuffling)."""
        seen = set()
        deliveries = list(self.store.deliveries)
        if self.store.settings["shuffle_deliveries"]:
            random.shuffle(deliveries)
        for delivery in deliveries:
            queue = self._queue(delivery)
            if queue not in seen:
                seen.add(queue)
                yield queue, delivery

    def next_due(self):
        """Wall-clock time of the earliest attempt that may go, or None when none is queued."""
        with self.store.lock:
            return min((d["next_attempt"] for _, d in self._heads()), default=None)

    def deliver(self, due_only=False):
        """Send what can be sent now; with ``due_only=False`` ignore the backoff schedule
        (but still try each failing delivery only once per call). Returns the attempts."""
        attempts = []
        with self._pass_lock:
            blocked = set()
            while (job := self._next_job(due_only, blocked)) is not None:
                result = self._post(job)
                with self.store.transaction():
                    self._record(job["delivery"], result, blocked)
                attempts.append(result)
        return attempts

    def _next_job(self, due_only, blocked):
        with self.store.lock:
            now = time.time()
            for queue, delivery in self._heads():
                if queue in blocked or (due_only and delivery["next_attempt"] > now):
                    continue
                event = self.store.objects[delivery["event"]]
                endpoint = self.store.objects[delivery["endpoint"]]
                body = {**event, "api_version": endpoint["api_version"] or event["api_version"]}
                return {
                    "delivery": delivery,
                    "url": endpoint["url"],
                    "secret": self.store.meta[endpoint["id"]]["secret"],
                    "payload": json.dumps(body, indent=2),
                }
        return None

    def _post(self, job):
        delivery = job["delivery"]
        header = signature_header(job["payload"], job["secret"], int(time.time()))
        request = urllib.request.Request(
            job["url"],
            data=job["payload"].encode(),
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": header,
            },
        )
        status, error = None, None
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as failure:
            status, error = failure.code, f"HTTP {failure.code}"
            failure.close()
        except (OSError, ValueError) as failure:
            error = str(failure)
        return {
            "event": delivery["event"],
            "endpoint": delivery["endpoint"],
            "url": job["url"],
            "status": status,
            "error": error,
            "delivered": status is not None and 200 <= status < 300,
        }

    def _record(self, delivery, result, blocked):
        deliveries = self.store.deliveries
        if not any(queued is delivery for queued in deliveries):
            return  # the endpoint was deleted (or the state reset) meanwhile
        delivery.update(
            attempts=delivery["attempts"] + 1,
            last_status=result["status"],
            last_error=result["error"],
        )
        result["attempt"] = delivery["attempts"]
        if result["delivered"]:
            deliveries.remove(delivery)
            self.store.objects[delivery["event"]]["pending_webhooks"] -= 1
        elif delivery["attempts"] >= self.max_attempts:
            deliveries.remove(delivery)
            log.warning("giving up on %s to %s", delivery["event"], result["url"])
        else:
            delay = self.retry_base * 2 ** (delivery["attempts"] - 1)
            delivery["next_attempt"] = time.time() + delay
            blocked.add(self._queue(delivery))
