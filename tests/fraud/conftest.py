import pytest


@pytest.fixture
def app_overrides():
    """Screening on, as in production."""
    return {"FRAUD_SCREENING": True}
