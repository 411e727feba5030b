"""Imports every model module, so ``Base.metadata`` is complete for Alembic and the tests."""

from marketplace.accounts import models as accounts  # noqa: F401
from marketplace.audit import models as audit  # noqa: F401
from marketplace.db import Base
from marketplace.fraud import models as fraud  # noqa: F401
from marketplace.idempotency import models as idempotency  # noqa: F401
from marketplace.jobs import models as jobs  # noqa: F401
from marketplace.ledger import models as ledger  # noqa: F401
from marketplace.network import models as network  # noqa: F401
from marketplace.notifications import models as notifications  # noqa: F401
from marketplace.payments import models as payments  # noqa: F401
from marketplace.problems import models as problems  # noqa: F401
from marketplace.referrals import models as referrals  # noqa: F401
from marketplace.webhooks import models as webhooks  # noqa: F401

metadata = Base.metadata
