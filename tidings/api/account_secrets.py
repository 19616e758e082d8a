"""/accounts/{api_key}/secrets: secret management (shared/specs/account.yml), Basic auth only.

An account manages its own secrets. Tidings has no primary/sub-account relation, so any other
`api_key` in the path is answered exactly as an unknown one (404, "Invalid API Key"), after
authentication and without looking it up: nothing tells whether that account exists.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse

from tidings.api.dependencies import basic_account, get_runtime, json_body
from tidings.api.problems import documented_problems
from tidings.domain.account import Account
from tidings.domain.errors import ApiKeyNotFound, InvalidJson, SecretValidationFailed
from tidings.services import api_secrets
from tidings.wire.account import (
    SecretInfo,
    SecretList,
    parse_create_secret,
    render_secret,
    render_secret_list,
)

router = APIRouter(prefix="/accounts/{api_key}/secrets", tags=["Secret Management"])


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "The secret breaks the rules, or the account already has two secrets",
        401: "Missing or wrong credentials",
        403: "The last secret cannot be revoked",
        404: "Not your API key, or no such secret",
        415: "Not JSON",
    }
    return documented_problems({status: described[status] for status in statuses})


async def secrets_owner(
    request: Request,
    api_key: Annotated[str, Path(description="The API key to manage secrets for")],
) -> Account:
    caller = await basic_account(request)
    if api_key != caller.api_key:
        raise ApiKeyNotFound(api_key[:100])
    return caller


Owner = Annotated[Account, Depends(secrets_owner)]
SecretId = Annotated[str, Path(description="ID of the API secret")]


@router.get("/", include_in_schema=False)
@router.get(
    "",
    response_model=SecretList,
    responses=_errors(401, 404),
    summary="Retrieve API Secrets",
    operation_id="retrieveAPISecrets",
)
async def list_secrets(request: Request, owner: Owner) -> JSONResponse:
    found = await api_secrets.list_secrets(get_runtime(request).database, owner.api_key)
    return JSONResponse(render_secret_list(owner.api_key, found))


async def new_secret(request: Request, _owner: Owner) -> str:
    try:
        body = await json_body(request)
    except InvalidJson:
        raise SecretValidationFailed("The body must be a JSON object with a secret.") from None
    return parse_create_secret(body)


@router.post("/", include_in_schema=False, status_code=201)
@router.post(
    "",
    status_code=201,
    response_model=SecretInfo,
    responses=_errors(400, 401, 404, 415),
    summary="Create API Secret",
    operation_id="createAPISecret",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["secret"],
                        "properties": {
                            "secret": {
                                "type": "string",
                                "description": "8 to 25 characters: at least one lower case letter, "
                                "one upper case letter and one digit",
                            }
                        },
                    }
                }
            },
        }
    },
)
async def create_secret(
    request: Request, owner: Owner, secret: Annotated[str, Depends(new_secret)]
) -> JSONResponse:
    runtime = get_runtime(request)
    created = await api_secrets.create_secret(
        runtime.database, owner.api_key, secret, runtime.authenticator.invalidate
    )
    return JSONResponse(render_secret(created), status_code=201)


@router.get(
    "/{secret_id}",
    response_model=SecretInfo,
    responses=_errors(401, 404),
    summary="Retrieve one API Secret",
    operation_id="retrieveAPISecret",
)
async def get_secret(request: Request, owner: Owner, secret_id: SecretId) -> JSONResponse:
    found = await api_secrets.get_secret(get_runtime(request).database, owner.api_key, secret_id)
    return JSONResponse(render_secret(found))


@router.delete(
    "/{secret_id}",
    status_code=204,
    response_class=Response,
    responses=_errors(401, 403, 404),
    summary="Revoke an API Secret",
    operation_id="revokeAPISecret",
)
async def revoke_secret(request: Request, owner: Owner, secret_id: SecretId) -> Response:
    runtime = get_runtime(request)
    await api_secrets.revoke_secret(
        runtime.database, owner.api_key, secret_id, runtime.authenticator.invalidate
    )
    return Response(status_code=204)
