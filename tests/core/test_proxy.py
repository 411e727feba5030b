"""Behind a reverse proxy (``PROXY_HOPS``) the client's address is the one the proxy forwarded,
so rate limits, the login throttle, the audit log and the fraud checks see people, not the
proxy; without it a made-up X-Forwarded-For header changes nothing."""

import pytest
from sqlalchemy import select

from marketplace.audit.models import AuditEntry
from tests.conftest import csrf_token

CLIENT_CLAIMS, PROXY_SAW = "198.51.100.1", "203.0.113.7"


@pytest.fixture(params=[0, 1], ids=["direct", "behind one proxy"])
def app_overrides(request):
    return {"FRAUD_SCREENING": False, "PROXY_HOPS": request.param}


def test_the_audit_log_records_the_address_the_trusted_proxy_saw(app, client, session, app_overrides):
    client.environ_base.update(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"{CLIENT_CLAIMS}, {PROXY_SAW}")
    page = client.get("/signup")
    signed_up = client.post(
        "/signup",
        data={
            "csrf_token": csrf_token(page.text),
            "name": "Ann Li",
            "email": "ann@example.com",
            "password": "correct-horse-battery",
        },
    )
    assert signed_up.status_code == 302, signed_up.text
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "member.signed_up")).one()
    assert entry.ip == (PROXY_SAW if app_overrides["PROXY_HOPS"] else "10.0.0.2")
