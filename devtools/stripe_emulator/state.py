"""The emulator's whole state: objects, clock, idempotency records, webhook queue.

Every object is stored once, as the dict the API returns, together with a small private
record (owner account, insertion order, data Stripe never shows), and its id is listed under its
kind in insertion order, so a list or a balance reads one kind's objects rather than all of them. A single re-entrant
lock guards all of it; the HTTP threads, the webhook thread and the Python helpers all
take it, so handlers can read-modify-write freely inside ``transaction()``.
"""

import contextlib
import copy
import json
import os
import secrets
import string
import threading
import time

from .errors import not_found

API_VERSION = "2026-10-28.endive"  # the version the pinned stripe SDK sends
_ALPHABET = string.ascii_letters + string.digits


DEFAULT_SETTINGS = {
    # Stripe takes a transfer reversal from the connected account's available balance.
    # Off by default: the marketplace's tests reverse transfers whose funds are still pending.
    "reversals_need_available_balance": False,
    # Stripe leaves a refund ``pending`` when the platform's available balance cannot cover it.
    "refunds_need_available_balance": False,
    # deliver queued webhooks in random order instead of per-object creation order
    "shuffle_deliveries": False,
}


def random_token(length=24):
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


class Store:
    def __init__(self, path=None):
        self.lock = threading.RLock()
        self.path = path
        self.on_event = None  # called (under the lock) whenever a webhook delivery is queued
        self.settings = dict(DEFAULT_SETTINGS)  # behaviour switches, kept across reset()
        self.reset()
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                saved = json.load(handle)
            for name in self._PERSISTED:
                setattr(self, name, saved[name])
            self._build_indexes()

    def reset(self):
        with self.lock:
            self.platform_id = "acct_" + random_token(16)
            self.clock_offset = 0.0
            self.seq = 0
            self.objects = {}  # id -> API object
            self.meta = {}  # id -> {"owner", "seq", ...private fields}
            self.idempotency = {}  # "account key" -> record
            self.account_links = {}  # token -> onboarding link record
            self.deliveries = []  # queued webhook deliveries, oldest first
            self._build_indexes()

    def _build_indexes(self):
        """The indexes derived from the objects (not persisted: rebuilt on load)."""
        self.kinds = {}  # kind -> {id: None}, in insertion order
        self.balances = {}  # (owner, currency) -> {"available": net, "pending": net}
        self.pending_balance = {}  # ids of pending balance transactions
        for object_id in sorted(self.objects, key=lambda object_id: self.meta[object_id]["seq"]):
            self._index(self.objects[object_id])

    def _index(self, obj):
        self.kinds.setdefault(obj["object"], {})[obj["id"]] = None
        if obj["object"] == "balance_transaction":
            self._balance_of(obj)[obj["status"]] += obj["net"]
            if obj["status"] == "pending":
                self.pending_balance[obj["id"]] = None

    def _balance_of(self, txn):
        return self.balances.setdefault((self.owner(txn["id"]), txn["currency"]), {"available": 0, "pending": 0})

    def make_available(self, txn):
        """A pending balance transaction's funds become available."""
        txn["status"] = "available"
        self.pending_balance.pop(txn["id"], None)
        balance = self._balance_of(txn)
        balance["pending"] -= txn["net"]
        balance["available"] += txn["net"]

    _PERSISTED = (
        "platform_id",
        "clock_offset",
        "seq",
        "objects",
        "meta",
        "idempotency",
        "account_links",
        "deliveries",
    )

    @contextlib.contextmanager
    def transaction(self):
        """Hold the lock for a unit of work and persist the result afterwards."""
        with self.lock:
            try:
                yield self
            finally:
                self.save()

    def save(self):
        if not self.path:
            return
        data = {name: getattr(self, name) for name in self._PERSISTED}
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(tmp, self.path)

    def now(self):
        return int(time.time() + self.clock_offset)

    def advance(self, seconds):
        with self.lock:
            self.clock_offset += seconds
            return self.now()

    @staticmethod
    def new_id(prefix):
        return prefix + random_token()

    def insert(self, obj, owner, **private):
        self.seq += 1
        self.objects[obj["id"]] = obj
        self.meta[obj["id"]] = {"owner": owner, "seq": self.seq, **private}
        self._index(obj)
        return obj

    def find(self, object_id, kind=None):
        """Look an object up regardless of owner (hosted pages, test controls)."""
        obj = self.objects.get(object_id)
        if obj is None or (kind and obj["object"] != kind):
            return None
        return obj

    def get(self, object_id, owner, kind, *, param="id", status=404):
        obj = self.find(object_id, kind)
        if obj is None or self.owner(object_id) != owner:
            raise not_found(kind, object_id, param=param, status=status)
        return obj

    def owner(self, object_id):
        return self.meta[object_id]["owner"]

    def of_kind(self, kind):
        """Every object of one kind, whoever owns it, oldest first."""
        return [self.objects[object_id] for object_id in self.kinds.get(kind, ())]

    def query(self, owner, kind, where=None):
        """Objects of one kind and owner, newest first, as Stripe lists them."""
        found = [
            obj
            for obj in self.of_kind(kind)
            if self.meta[obj["id"]]["owner"] == owner and (where is None or where(obj))
        ]
        found.reverse()
        return found

    def remove(self, object_id):
        obj = self.objects.pop(object_id, None)
        self.meta.pop(object_id, None)
        if obj is not None:
            self.kinds.get(obj["object"], {}).pop(object_id, None)

    @staticmethod
    def snapshot(obj):
        return copy.deepcopy(obj)
