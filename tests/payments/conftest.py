"""The emulator and the app served over HTTP, for every payments test module."""

from tests.payments.test_payments import emulator, live  # noqa: F401 (fixtures)
