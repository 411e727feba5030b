import pytest

from tests.payments.test_payments import emulator, live  # noqa: F401 (fixtures)


@pytest.fixture
def app_overrides():
    """Screening on, as in production."""
    return {"FRAUD_SCREENING": True}
