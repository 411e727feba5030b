"""The contract, fuzzed: schemathesis generates requests from ``/api/v1/openapi.json`` for every
operation and sends them to the app in-process, as a member (Ann, on the chains) and as a company
manager (the owner), over the authorization matrix's scene. Each answer must be no 500, a status
the operation declares, and a body that matches the schema documented for that status. (That
every declared answer can be reached is ``test_contract_reach.py``'s to show.)

Then the stateful run: scenarios of calls that follow the document's links (``api/document.py``),
so what one call creates is what the next acts on, under the same checks.

Bounded and deterministic: a few examples per operation and caller (``EXAMPLES``), a few
scenarios per caller (``SCENARIOS``), derandomized, no example database. Path ids are the
scene's real ones, so the bodies reach the services."""

# ruff: noqa: F811  (the scene fixture, imported from the authorization matrix, is a parameter below)
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from marketplace.db import db
from marketplace.models import metadata
from tests.api.openapi import declared_answers
from tests.api.test_authorization import (  # noqa: F401  (the module's app, its emptied tables and scene)
    app,
    clean_slate,
    copy_back,
    delete_every_row,
    emulator,
    scene,
)

EXAMPLES = 6
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CALLERS = {"member": "ann", "manager": "owner"}


def path_ids(path: str, scene) -> dict:
    """The scene's ids for an operation's path parameters (the ones nothing has: a 404 to fuzz)."""
    ids = {
        "problem_id": scene.public,
        "introduction_id": scene.proposed,
        "company_id": scene.company,
        "invitation_id": scene.pending,
        "user_id": scene.bob,
        "token_id": scene.token,
        "request_id": scene.request,
        "card_id": scene.card,
        "token": scene.link if path.startswith("/api/v1/referrals/") else scene.invitation,
    }
    names = {part[1:-1] for part in path.split("/") if part.startswith("{")}
    return {name: ids.get(name, scene.missing) for name in names}


def check(case, response, headers: dict, seen: Counter, failures: Counter) -> None:
    """Count the answer as seen, and each way it breaks the contract as a failure."""
    operation = case.operation
    seen[(operation.method.upper(), operation.path, response.status_code)] += 1
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - collected, reported together
        for problem in getattr(error, "exceptions", [error]):
            failures[f"{operation.label} -> {response.status_code}: {str(problem).splitlines()[0]}"] += 1


def fuzz(operation, mode, token: str, scene, seen: Counter, failures: Counter) -> int:
    """Send ``EXAMPLES`` generated requests to ``operation`` with ``token``; returns how many."""
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_ids(operation.path, scene))
    headers = {"Authorization": f"Bearer {token}"}
    cases = 0

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        nonlocal cases
        cases += 1
        try:
            response = case.call(headers=headers)
        except Exception as error:  # noqa: BLE001 - the app re-raises what would be a 500 in tests
            failures[f"{operation.label} -> 500: {type(error).__name__}: {str(error).splitlines()[0]}"] += 1
            return
        check(case, response, headers, seen, failures)

    try:
        run()
    except Unsatisfiable:  # nothing to negate: no body, query or free path parameter
        assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
    return cases


@pytest.mark.timeout(600)
def test_every_operation_answers_as_documented(app, scene, world, api):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    tokens = [api(getattr(world, name)).token for name in CALLERS.values()]
    seen: Counter = Counter()
    failures: Counter = Counter()
    cases = 0

    for result in schema.get_all_operations():
        for token in tokens:
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
                cases += fuzz(result.ok(), mode, token, scene, seen, failures)

    report = "\n".join(f"{n:4} x {failure}" for failure, n in failures.most_common())
    assert not failures, f"{sum(failures.values())} of {cases} cases broke the contract:\n{report}"
    declared = declared_answers(schema.raw_schema)
    reached = {(method, path, status) for method, path, status in seen if (method, path, status) in declared}
    # That every declared answer is reached by some request is test_contract_reach.py's to show.
    print(f"{cases} generated cases; {len(reached)} of {len(declared)} declared answers reached")


# The stateful run: scenarios of up to STEPS calls, SCENARIOS per caller.
SCENARIOS = 60
STEPS = 8


def keep_tables(engine) -> Callable[[], None]:
    """A way back to the tables as they are now. Each scenario of the stateful run starts from the
    same rows, or Hypothesis, which replays choices it made before, would see the same choices
    answered differently. SQLite keeps a copy of the database file; PostgreSQL keeps the rows."""
    db.remove()
    if engine.dialect.name == "sqlite":
        db.dispose()
        path = Path(engine.url.database)
        shutil.copyfile(path, path.with_name("kept.db"))

        def restore_file() -> None:
            db.remove()
            copy_back(engine, "kept.db")

        return restore_file
    with engine.connect() as connection:
        kept = {table: connection.execute(table.select()).mappings().all() for table in metadata.sorted_tables}

    def restore_rows() -> None:
        db.remove()
        with engine.begin() as connection:
            delete_every_row(connection)
            for table in metadata.sorted_tables:
                if kept[table]:
                    connection.execute(table.insert(), [dict(row) for row in kept[table]])

    return restore_rows


def linked_machine(schema, token: str, scene, restore: Callable[[], None], seen, failures, followed):
    """A state machine over the document's links. A scenario starts from the scene's rows; its
    first call gets the scene's ids in its path, as ``fuzz`` does (and in a body's
    ``company_id``); each further call may follow a link of an earlier answer, so what one call
    creates (a company, an endpoint, a card) is what the next one acts on."""
    headers = {"Authorization": f"Bearer {token}"}

    class Linked(schema.as_state_machine()):
        def setup(self):
            restore()

        def step(self, input):
            if input.transition is None:
                case = input.case
                case.path_parameters = {**(case.path_parameters or {}), **path_ids(case.operation.path, scene)}
                if isinstance(case.body, dict) and "company_id" in case.body:  # a problem of the scene's company
                    case.body["company_id"] = scene.company
            elif input.is_applied:
                followed[input.transition.id] += 1
            return super().step(input)

        def get_call_kwargs(self, case):
            return {"headers": headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            check(case, response, headers, seen, failures)

    return Linked


@pytest.mark.timeout(600)
def test_linked_operations_chain_as_documented(app, scene, world, api, monkeypatch):
    """Following the links the document declares (``api/document.py``), as a member and as a
    manager: no answer is a 500 or outside what its operation declares, and links are followed."""
    # A server error becomes a 500 answer (which the checks refuse) instead of an exception,
    # so Hypothesis never replays a scenario against a database the first run already changed.
    monkeypatch.setitem(app.config, "PROPAGATE_UNEXPECTED", False)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    schema.config.phases.stateful.inference.algorithms = []  # only the links the document declares
    seen: Counter = Counter()
    failures: Counter = Counter()
    followed: Counter = Counter()

    tokens = [api(getattr(world, caller)).token for caller in CALLERS.values()]
    restore = keep_tables(db.engine)
    for token in tokens:
        machine = linked_machine(schema, token, scene, restore, seen, failures, followed)
        machine.run(
            settings=settings(
                max_examples=SCENARIOS,
                stateful_step_count=STEPS,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
        )

    report = "\n".join(f"{n:4} x {failure}" for failure, n in failures.most_common())
    steps = sum(seen.values())
    assert not failures, f"{sum(failures.values())} of {steps} calls broke the contract:\n{report}"
    print(f"{steps} stateful calls; {sum(followed.values())} followed a link, {len(followed)} links in all")
    assert len(followed) >= 4, f"too few links followed: {sorted(followed)}"
