"""Schemathesis against the served OpenAPI document, on SQLite and PostgreSQL.

The document is loaded from the ASGI app itself (/openapi.json), and schemathesis generates
requests for every operation in it, valid and invalid, sent with a real account's credentials.
Every response must be what the document promises: no server error, a documented status code,
a documented content type and headers, and a body that matches the schema documented for it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.types import ASGIApp

from tests.conftest import run_async
from tidings.api.app import create_app
from tidings.config import Settings
from tidings.runtime import Role, Runtime
from tidings.services.accounts import NewAccountCredentials, create_account

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Examples per operation in the fuzzing phase: the whole module stays under a minute for both
# databases on this project's 2-core machines.
MAX_EXAMPLES = 10
# The coverage phase (schemathesis' deterministic boundary and negative cases) runs for every
# operation but three, which keep the fuzzing phase, for time alone: POST /v1/messages, whose body
# is a one-of of 40 channel models (~4,300 coverage cases, ~20 s per database; examples.json and
# test_examples.py cover that body's boundaries case by case), and creating an application, where
# every accepted body generates an RSA key pair (~500 cases, ~13 s per database), or replacing one,
# which takes the same body again.
CONFIG = schemathesis.Config.from_str(
    """
[[operations]]
include-name-regex = "^(POST /v1/messages|POST /v2/applications|PUT /v2/applications/.*)$"
phases.coverage.enabled = false
"""
)


async def _new_account(settings: Settings) -> NewAccountCredentials:
    runtime = Runtime(settings, role=Role.API)
    await runtime.start()
    try:
        return await create_account(runtime.database, runtime.box, name="schemathesis")
    finally:
        await runtime.stop()


@pytest.fixture
def credentials(settings: Settings) -> NewAccountCredentials:
    return run_async(lambda: _new_account(settings))


@pytest.fixture
def app(settings: Settings, credentials: NewAccountCredentials) -> Iterator[ASGIApp]:
    """The app with its own runtime, started and stopped by the ASGI lifespan: schemathesis calls
    it from an event loop of its own, which is where the runtime's connections must live."""
    served = create_app(Runtime(settings, role=Role.API), manage_runtime=True)
    yield served
    asgi.shutdown_lifespans()


@pytest.fixture
def api_schema(app: ASGIApp) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's lazy schema reads and rewrites the test node's `_nodeid` (to name each
    operation in reports), which pytest 9.2 no longer keeps (`_id` now): give it one to work on."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


def authenticate(case: schemathesis.Case, credentials: NewAccountCredentials) -> dict[str, str]:
    """The account's own key wherever an operation names one (path or query), and its Basic
    credentials in the header, so generated requests get past authentication to the operation."""
    if "api_key" in (case.path_parameters or {}):
        case.path_parameters["api_key"] = credentials.api_key
    if case.query is not None and "api_key" in case.query:
        case.query["api_key"] = credentials.api_key
        case.query["api_secret"] = credentials.api_secret
    token = base64.b64encode(f"{credentials.api_key}:{credentials.api_secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
    database=None,
)
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, credentials: NewAccountCredentials
) -> None:
    case.call_and_validate(headers=authenticate(case, credentials), checks=CHECKS)
