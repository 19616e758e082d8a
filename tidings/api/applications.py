"""/v2/applications: the Application API v2, Basic auth only, scoped to the calling account.

Status codes are the spec's (shared/specs/application.v2.yml): 201 create, 200 get/list/update,
204 delete, 400 for an invalid body or list query, 401, 404 (also for another account's id), 415.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from tidings.api.dependencies import basic_account, get_runtime, json_body
from tidings.api.problems import documented_problems
from tidings.domain.account import Account
from tidings.domain.errors import InvalidApplicationPayload, InvalidJson, InvalidParameter
from tidings.services import applications as service
from tidings.services.applications import ApplicationDraft
from tidings.wire.application_responses import (
    BASE_PATH,
    ApplicationList,
    ApplicationResponse,
    render_application,
    render_page,
)
from tidings.wire.applications import parse_application_request, parse_list_query, request_body_schema

router = APIRouter(prefix=BASE_PATH, tags=["Applications v2"])


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "Invalid request (see invalid_parameters)",
        401: "Missing or wrong credentials",
        404: "No such application in this account",
        415: "Not JSON",
    }
    return documented_problems({status: described[status] for status in statuses})


async def application_draft(request: Request) -> ApplicationDraft:
    try:
        body = await json_body(request)
    except InvalidJson as error:
        raise InvalidApplicationPayload(
            [InvalidParameter("body", "must be valid JSON.")], error.detail
        ) from None
    return parse_application_request(body)


Caller = Annotated[Account, Depends(basic_account)]
# Declared after Caller in each route: FastAPI resolves dependencies in order, so 401 comes first.
Draft = Annotated[ApplicationDraft, Depends(application_draft)]


@router.get("/", include_in_schema=False)  # the spec's server URL plus its path "/"
@router.get(
    "",
    response_model=ApplicationList,
    responses=_errors(400, 401),
    summary="List available applications",
    operation_id="listApplication",
)
async def list_applications(
    request: Request,
    caller: Caller,
    page_size: Annotated[
        str | None, Query(description="The number of applications per page (1 to 100)")
    ] = None,
    page: Annotated[str | None, Query(description="The current page number (starts at 1)")] = None,
) -> JSONResponse:
    # Query values are taken as text and checked here, so errors take the spec's 400 shape.
    number, size = parse_list_query(
        {k: v for k, v in (("page", page), ("page_size", page_size)) if v is not None}
    )
    found = await service.list_applications(
        get_runtime(request).database, caller.api_key, page=number, page_size=size
    )
    return JSONResponse(render_page(found))


@router.post("/", status_code=201, include_in_schema=False)
@router.post(
    "",
    status_code=201,
    response_model=ApplicationResponse,
    responses=_errors(400, 401, 415),
    openapi_extra={"requestBody": request_body_schema()},
    summary="Create an application",
    operation_id="createApplication",
)
async def create_application(request: Request, caller: Caller, draft: Draft) -> JSONResponse:
    created = await service.create_application(get_runtime(request).database, caller.api_key, draft)
    return JSONResponse(
        render_application(created.application, private_key=created.private_key), status_code=201
    )


@router.get(
    "/{application_id}",
    response_model=ApplicationResponse,
    responses=_errors(401, 404),
    summary="Get an application",
    operation_id="getApplication",
)
async def get_application(request: Request, caller: Caller, application_id: str) -> JSONResponse:
    application = await service.get_application(get_runtime(request).database, caller.api_key, application_id)
    return JSONResponse(render_application(application))


@router.put(
    "/{application_id}",
    response_model=ApplicationResponse,
    responses=_errors(400, 401, 404, 415),
    openapi_extra={"requestBody": request_body_schema()},
    summary="Update an application",
    operation_id="updateApplication",
)
async def update_application(
    request: Request, caller: Caller, draft: Draft, application_id: str
) -> JSONResponse:
    runtime = get_runtime(request)
    application = await service.update_application(
        runtime.database, runtime.jwt_authenticator, caller.api_key, application_id, draft
    )
    return JSONResponse(render_application(application))


@router.delete(
    "/{application_id}",
    status_code=204,
    response_class=Response,
    responses=_errors(401, 404),
    summary="Delete an application",
    operation_id="deleteApplication",
)
async def delete_application(request: Request, caller: Caller, application_id: str) -> Response:
    runtime = get_runtime(request)
    await service.delete_application(
        runtime.database, runtime.jwt_authenticator, caller.api_key, application_id
    )
    return Response(status_code=204)
