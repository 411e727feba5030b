"""Injected failures for tests: fail, delay or drop the next calls to a path."""

from dataclasses import dataclass


@dataclass
class Fault:
    kind: str  # "fail" (answer `status`), "delay" (sleep `seconds`, then run), "drop"
    path: str  # prefix of the request path
    method: str | None = None
    times: int = 1
    status: int = 500
    seconds: float = 0.0

    def matches(self, method, path):
        return path.startswith(self.path) and self.method in (None, method)


class Faults:
    """Pending fault rules; guarded by the store's lock like everything else."""

    def __init__(self, lock):
        self._lock = lock
        self._rules = []

    def add(self, fault):
        if fault.method:
            fault.method = fault.method.upper()
        with self._lock:
            self._rules.append(fault)

    def clear(self):
        with self._lock:
            self._rules.clear()

    def take(self, method, path):
        """Consume one use of the first matching rule of each kind; {kind: Fault}."""
        taken = {}
        with self._lock:
            for rule in list(self._rules):
                if rule.kind in taken or not rule.matches(method, path):
                    continue
                taken[rule.kind] = rule
                rule.times -= 1
                if rule.times <= 0:
                    self._rules.remove(rule)
        return taken
