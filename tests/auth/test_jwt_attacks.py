"""Attacks on the authentication of POST /v1/messages, as a table.

Every refused row must answer 401 with Vonage's exact body and leave nothing behind: no message,
no job, and no replay-cache entry (a refused token must not burn its `jti`, so after each attack
a genuine token carrying the same `jti` is still accepted). Tokens for the baseline are minted by
the official SDK (`vonage_jwt`); the attacks are crafted by hand.

The runtime here is API-only (no worker), so the job count cannot move behind the test's back. It
is shared by the module's tests (on each backend), each with an account, an application and a
client address of its own, so that one test's refusals never throttle another's; what a test
stored is counted as a difference.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import inspect
import ipaddress
import itertools
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from sqlalchemy import delete, func, insert, select, update
from starlette.types import ASGIApp
from vonage_jwt import JwtClient

import tidings.auth.basic as basic_module
from tests.conftest import suite_settings
from tests.signing_keys import signing_key
from tidings.api.app import create_app
from tidings.auth.secret_hashing import hash_secret
from tidings.domain.application import Application
from tidings.runtime import Role, Runtime
from tidings.services.accounts import NewAccountCredentials
from tidings.store.applications import insert_application
from tidings.store.tables import account_secrets, accounts, applications, jobs, jwt_replays, messages

UNAUTHORIZED = {
    "type": "https://developer.vonage.com/api-errors#unauthorized",
    "title": "Unauthorized",
    "detail": "You did not provide correct credentials.",
}
SMS = {"channel": "sms", "message_type": "text", "to": "447700900000", "from": "Acme", "text": "hello"}
MAX_LIFETIME = 86400  # Settings.jwt_max_lifetime_seconds default
LEEWAY = 30  # Settings.jwt_leeway_seconds default


def _pem_private(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _pem_public(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


# Generated once per test session: RSA key generation is the slow part of setting up a row.
APP_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE_PEM = _pem_private(APP_KEY)
PUBLIC_PEM = _pem_public(APP_KEY)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()


# ---------------------------------------------------------------- shared helpers (also used by
# test_replay_cache.py)


@dataclass(frozen=True)
class App:
    id: str
    api_key: str
    private_pem: str = PRIVATE_PEM
    public_pem: str = PUBLIC_PEM

    def sdk_token(self, **options: Any) -> str:
        """A token exactly as the official SDK mints it (options become extra/overriding claims)."""
        # The SDK takes the key parsed as well as in PEM, and signs alike.
        client = JwtClient(self.id, signing_key(self.private_pem))  # type: ignore[arg-type]
        return client.generate_application_jwt(options or None).decode()


async def create_application(runtime: Runtime, api_key: str) -> App:
    now = datetime.now(UTC)
    application = Application(
        id=str(uuid.uuid4()),
        account_id=api_key,
        name="auth tests",
        public_key=PUBLIC_PEM,
        capabilities={"messages": {"version": "v1", "webhooks": {}}},
        created_at=now,
        updated_at=now,
    )
    async with runtime.database.begin() as conn:
        await insert_application(conn, application)
    return App(id=application.id, api_key=api_key)


async def send(client: httpx.AsyncClient, authorization: str | bytes | None) -> httpx.Response:
    headers: dict[str, str | bytes] = {} if authorization is None else {"Authorization": authorization}
    return await client.post("/v1/messages", json=SMS, headers=headers)


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert set(body) == {*UNAUTHORIZED, "instance"}, body
    assert {k: body[k] for k in UNAUTHORIZED} == UNAUTHORIZED
    assert re.fullmatch(r"[0-9a-f]{32}", body["instance"]), body["instance"]


@dataclass(frozen=True)
class Stored:
    messages: int
    jobs: int
    replays: int


async def stored(runtime: Runtime) -> Stored:
    async with runtime.database.engine.connect() as conn:

        async def count(table: Any) -> int:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())

        return Stored(await count(messages), await count(jobs), await count(jwt_replays))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def json_segment(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def raw_token(header: Any, payload: Any, sign: Callable[[bytes], bytes] | None = None) -> str:
    """A compact JWS built by hand, so that no library refuses to produce what an attacker sends."""
    signing_input = f"{json_segment(header)}.{json_segment(payload)}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64url(signature)}"


def hmac_signer(secret: bytes, digest: Any = hashlib.sha256) -> Callable[[bytes], bytes]:
    return lambda data: hmac.new(secret, data, digest).digest()


def now() -> int:
    return int(time.time())


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
async def runtime(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Runtime]:
    """API role only: no worker, so nothing but the requests under test writes jobs."""
    settings = suite_settings(module_database_url, tmp_path_factory.mktemp("jwt-attacks"))
    runtime = Runtime(settings, role=Role.API)
    await runtime.start()
    yield runtime
    await runtime.stop()


@pytest.fixture(scope="module")
def asgi_app(runtime: Runtime) -> ASGIApp:
    return create_app(runtime)


_ADDRESSES = itertools.count(1)


@pytest.fixture
async def client(asgi_app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    """A client from an address of the test's own, whose refusals count against it alone."""
    address = str(ipaddress.ip_address("10.0.0.0") + next(_ADDRESSES))
    transport = httpx.ASGITransport(app=asgi_app, client=(address, 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://tidings.test") as client:
        yield client


@pytest.fixture
async def app(runtime: Runtime, account: NewAccountCredentials) -> App:
    return await create_application(runtime, account.api_key)


@dataclass
class Ctx:
    client: httpx.AsyncClient
    runtime: Runtime
    app: App
    jti: str  # the attack's jti; a genuine token with it must still work afterwards

    def claims(self, **changes: Any) -> dict[str, Any]:
        """The SDK's claims, with `changes` applied (a value of DROP removes the claim)."""
        issued = now()
        claims: dict[str, Any] = {
            "application_id": self.app.id,
            "iat": issued,
            "jti": self.jti,
            "exp": issued + 900,
        }
        for name, value in changes.items():
            if value is DROP:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def rs256(self, claims: dict[str, Any], key: Any = None, algorithm: str = "RS256") -> str:
        key = key or signing_key(self.app.private_pem)
        return jwt.encode(claims, key, algorithm=algorithm, headers={"typ": "JWT"})

    def genuine(self, **options: Any) -> str:
        return self.app.sdk_token(jti=self.jti, **options)


DROP = object()
Attack = Callable[[Ctx], "str | bytes | Awaitable[str | bytes]"]


@dataclass(frozen=True)
class Row:
    name: str
    authorization: Attack
    # After the refusal, a genuine token with the attack's jti is still accepted (not burned).
    follow_up: bool = True
    # The refusal left the replay cache untouched.
    replay_untouched: bool = True


def bearer(build: Callable[[Ctx], str]) -> Attack:
    return lambda ctx: f"Bearer {build(ctx)}"


def signed_claims(**changes: Any) -> Attack:
    """Correctly signed with the application's own key, RS256: only the claims are wrong."""
    return bearer(lambda ctx: ctx.rs256(ctx.claims(**changes)))


def with_alg_none(header_alg: str) -> Attack:
    return bearer(lambda ctx: raw_token({"alg": header_alg, "typ": "JWT"}, ctx.claims()))


def _none_keeping_signature(ctx: Ctx) -> str:
    _, payload, signature = ctx.genuine().split(".")
    return f"{json_segment({'alg': 'none', 'typ': 'JWT'})}.{payload}.{signature}"


def _rs256_empty_signature(ctx: Ctx) -> str:
    return raw_token({"alg": "RS256", "typ": "JWT"}, ctx.claims())


def _hs_with_public_pem(alg: str, digest: Any, pem: Callable[[str], str] = lambda p: p) -> Attack:
    """Key confusion: HMAC keyed with the public key as the server stores it."""
    return bearer(
        lambda ctx: raw_token(
            {"alg": alg, "typ": "JWT"}, ctx.claims(), hmac_signer(pem(ctx.app.public_pem).encode(), digest)
        )
    )


def _rs256_header_hmac_signature(ctx: Ctx) -> str:
    # Claims RS256 but carries an HMAC over the public key: must fail RSA verification.
    return raw_token({"alg": "RS256", "typ": "JWT"}, ctx.claims(), hmac_signer(ctx.app.public_pem.encode()))


def _other_alg(algorithm: str, key: Any) -> Attack:
    return bearer(lambda ctx: ctx.rs256(ctx.claims(), key=key, algorithm=algorithm))


def _payload_swap(ctx: Ctx) -> str:
    """A genuine signature over one payload, attached to another."""
    header, _, signature = ctx.app.sdk_token().split(".")
    forged = json_segment(ctx.claims(acl={"paths": {"/**": {}}}, sub="admin"))
    return f"{header}.{forged}.{signature}"


def _extended_exp(ctx: Ctx) -> str:
    genuine = ctx.app.sdk_token(jti=ctx.jti, iat=now() - 2000, exp=now() - 1100)
    header, payload, signature = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] = now() + 900
    return f"{header}.{json_segment(claims)}.{signature}"


def _flipped_signature(ctx: Ctx) -> str:
    header, payload, signature = ctx.genuine().split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{header}.{payload}.{b64url(bytes(raw))}"


def _truncated_signature(ctx: Ctx) -> str:
    header, payload, signature = ctx.genuine().split(".")
    return f"{header}.{payload}.{signature[:-8]}"


def _detached_payload(ctx: Ctx) -> str:
    header = {"alg": "RS256", "typ": "JWT", "b64": False, "crit": ["b64"]}
    return raw_token(header, ctx.claims(), lambda data: b"x" * 256)


def _genuine_plus_segment(ctx: Ctx) -> str:
    return ctx.genuine() + ".AAAA"


def _two_tokens(ctx: Ctx) -> str:
    return f"{ctx.app.sdk_token()} {ctx.genuine()}"


async def _deleted_application(ctx: Ctx) -> str:
    token = ctx.genuine()  # minted while the application exists
    assert (await send(ctx.client, f"Bearer {ctx.app.sdk_token()}")).status_code == 202  # key cached
    async with ctx.runtime.database.begin() as conn:
        await conn.execute(delete(applications).where(applications.c.id == ctx.app.id))
    ctx.runtime.jwt_authenticator.forget(ctx.app.id)
    return f"Bearer {token}"


async def _disabled_account(ctx: Ctx) -> str:
    assert (await send(ctx.client, f"Bearer {ctx.app.sdk_token()}")).status_code == 202  # account cached
    async with ctx.runtime.database.begin() as conn:
        await conn.execute(
            update(accounts).where(accounts.c.api_key == ctx.app.api_key).values(status="disabled")
        )
    ctx.runtime.accounts.forget(ctx.app.api_key)
    return f"Bearer {ctx.genuine()}"


def _forged(ctx: Ctx, **changes: Any) -> str:
    """RS256 header, junk signature: only what is read before the signature check matters."""
    return raw_token({"alg": "RS256", "typ": "JWT"}, ctx.claims(**changes), lambda data: b"x" * 256)


def _basic_of(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


REFUSED: list[Row] = [
    # --- no signature / wrong algorithm
    Row("alg_none_unsigned", with_alg_none("none")),
    Row("alg_None_unsigned", with_alg_none("None")),
    Row("alg_NONE_unsigned", with_alg_none("NONE")),
    Row("alg_none_keeping_a_genuine_signature", bearer(_none_keeping_signature)),
    Row("rs256_header_empty_signature", bearer(_rs256_empty_signature)),
    Row("hs256_keyed_with_public_pem", _hs_with_public_pem("HS256", hashlib.sha256)),
    Row("hs256_keyed_with_public_pem_stripped", _hs_with_public_pem("HS256", hashlib.sha256, str.strip)),
    Row("hs512_keyed_with_public_pem", _hs_with_public_pem("HS512", hashlib.sha512)),
    Row("rs256_header_with_hmac_signature", bearer(_rs256_header_hmac_signature)),
    Row(
        "hs256_some_secret",
        bearer(lambda ctx: jwt.encode(ctx.claims(), "s3cret-s3cret-s3cret-s3cret-s3cret", algorithm="HS256")),
    ),
    Row("rs256_signed_by_another_private_key", _other_alg("RS256", OTHER_RSA_KEY)),
    Row("rs512_own_key", _other_alg("RS512", APP_KEY)),
    Row("ps256_own_key", _other_alg("PS256", APP_KEY)),
    Row("es256", _other_alg("ES256", EC_KEY)),
    Row("eddsa", _other_alg("EdDSA", ED_KEY)),
    Row("detached_payload_b64_false", bearer(_detached_payload)),
    # --- time claims
    Row("expired", lambda ctx: f"Bearer {ctx.rs256(ctx.claims(iat=now() - 2000, exp=now() - 1100))}"),
    Row(
        "expired_just_beyond_leeway",
        lambda ctx: f"Bearer {ctx.rs256(ctx.claims(iat=now() - 900, exp=now() - LEEWAY - 10))}",
    ),
    Row("nbf_in_the_future", lambda ctx: f"Bearer {ctx.rs256(ctx.claims(nbf=now() + 120))}"),
    Row(
        "iat_in_the_future_beyond_leeway",
        lambda ctx: f"Bearer {ctx.rs256(ctx.claims(iat=now() + 120, exp=now() + 1020))}",
    ),
    Row(
        "iat_older_than_max_lifetime",
        lambda ctx: f"Bearer {ctx.rs256(ctx.claims(iat=now() - MAX_LIFETIME - 120, exp=now() + 600))}",
    ),
    Row(
        "lifetime_longer_than_max",
        lambda ctx: f"Bearer {ctx.rs256(ctx.claims(exp=now() + MAX_LIFETIME + 60))}",
    ),
    Row("no_iat", signed_claims(iat=DROP)),
    Row("iat_not_a_number", lambda ctx: f"Bearer {ctx.rs256(ctx.claims(iat=str(now())))}"),
    Row("exp_not_a_number", lambda ctx: f"Bearer {ctx.rs256(ctx.claims(exp=str(now() + 900)))}"),
    Row("iat_true", signed_claims(iat=True)),
    # --- jti
    Row("no_jti", signed_claims(jti=DROP)),
    Row("empty_jti", signed_claims(jti="")),
    Row("oversized_jti_151", signed_claims(jti="j" * 151)),
    Row("oversized_jti_10k", signed_claims(jti="j" * 10_000)),
    Row("jti_number", signed_claims(jti=12345)),
    Row("jti_null", signed_claims(jti=None)),
    Row("jti_list", signed_claims(jti=["a"])),
    # NUL and lone surrogates once reached the replay cache: a driver error (500) on PostgreSQL/Redis.
    Row("jti_with_nul", signed_claims(jti="a\u0000b")),
    Row("jti_with_lone_surrogate", signed_claims(jti="a\ud800b")),
    Row("jti_with_newline", signed_claims(jti="a\nb")),
    # --- application
    Row("no_application_id", signed_claims(application_id=DROP)),
    Row("application_id_number", signed_claims(application_id=123)),
    Row("application_id_null", signed_claims(application_id=None)),
    Row("application_id_empty", signed_claims(application_id="")),
    # Read before the signature is checked, so anyone can send these: once a 500 (driver error).
    Row("application_id_with_nul_unsigned", bearer(lambda ctx: _forged(ctx, application_id="a\u0000b"))),
    Row(
        "application_id_with_lone_surrogate_unsigned",
        bearer(lambda ctx: _forged(ctx, application_id="a\ud800b")),
    ),
    Row("application_id_oversized_unsigned", bearer(lambda ctx: _forged(ctx, application_id="a" * 5000))),
    Row(
        "application_id_with_nul_signed",
        lambda ctx: f"Bearer {ctx.rs256(ctx.claims(application_id=ctx.app.id + chr(0)))}",
    ),
    Row("application_id_list", lambda ctx: f"Bearer {ctx.rs256(ctx.claims(application_id=[ctx.app.id]))}"),
    Row(
        "unknown_application_id",
        lambda ctx: f"Bearer {ctx.rs256(ctx.claims(application_id=str(uuid.uuid4())))}",
    ),
    Row(
        "application_id_upper_case",
        lambda ctx: f"Bearer {ctx.rs256(ctx.claims(application_id=ctx.app.id.upper()))}",
    ),
    Row(
        "application_id_padded",
        lambda ctx: f"Bearer {ctx.rs256(ctx.claims(application_id=' ' + ctx.app.id + ' '))}",
    ),
    Row("application_deleted_after_minting", _deleted_application, follow_up=False, replay_untouched=True),
    Row("account_disabled", _disabled_account, follow_up=False, replay_untouched=True),
    # --- acl
    Row("acl_other_paths", signed_claims(acl={"paths": {"/*/users/**": {}}})),
    Row("acl_v0_1_only", signed_claims(acl={"paths": {"/v0.1/messages": {}}})),
    Row("acl_longer_path", signed_claims(acl={"paths": {"/v1/messages/extra": {}}})),
    Row("acl_empty_paths", signed_claims(acl={"paths": {}})),
    Row("acl_string", signed_claims(acl="x")),
    Row("acl_paths_list", signed_claims(acl={"paths": []})),
    Row("acl_paths_list_of_patterns", signed_claims(acl={"paths": ["/*/messages/**"]})),
    Row("acl_null", signed_claims(acl=None)),
    Row("acl_misspelled_key", signed_claims(acl={"path": {"/**": {}}})),
    Row("acl_deep_globstars", signed_claims(acl={"paths": {"/**" * 2000 + "/users": {}}})),
    Row(
        "acl_other_paths_sdk_minted",
        lambda ctx: f"Bearer {ctx.genuine(acl={'paths': {'/*/users/**': {}}})}",
    ),
    # --- tampering
    Row("payload_swapped_under_genuine_signature", bearer(_payload_swap)),
    Row("exp_extended_under_genuine_signature", bearer(_extended_exp)),
    Row("signature_bit_flipped", bearer(_flipped_signature)),
    Row("signature_truncated", bearer(_truncated_signature)),
    Row("genuine_plus_extra_segment", bearer(_genuine_plus_segment)),
    Row("two_tokens", bearer(_two_tokens)),
    # --- garbage
    Row("no_authorization_header", lambda ctx: None),  # type: ignore[arg-type,return-value]
    Row("empty_authorization", lambda ctx: ""),
    Row("bearer_alone", lambda ctx: "Bearer"),
    Row("bearer_space", lambda ctx: "Bearer "),
    Row("bearer_x_y_z", lambda ctx: "Bearer x.y.z"),
    Row("bearer_two_segments", lambda ctx: "Bearer a.b"),
    Row("bearer_not_base64", lambda ctx: "Bearer !!!.***.$$$"),
    Row("bearer_latin1_bytes", lambda ctx: b"Bearer \xff\xfe.\xfd.\xfc"),
    Row("bearer_huge", lambda ctx: "Bearer " + "A" * 1_000_000),
    Row("bearer_huge_dotted", lambda ctx: "Bearer " + ".".join(["QUFB" * 100_000] * 3)),
    Row("header_not_json", lambda ctx: f"Bearer {b64url(b'{not json')}.{json_segment(ctx.claims())}.AAAA"),
    Row(
        "header_json_array", lambda ctx: f"Bearer {json_segment(['RS256'])}.{json_segment(ctx.claims())}.AAAA"
    ),
    Row(
        "payload_json_array",
        lambda ctx: "Bearer " + raw_token({"alg": "RS256", "typ": "JWT"}, [ctx.claims()], lambda d: b"x"),
    ),
    Row(
        "payload_deeply_nested",
        lambda ctx: f"Bearer {json_segment({'alg': 'RS256'})}.{b64url(b'[' * 100_000 + b']' * 100_000)}.AAAA",
    ),
    Row(
        "header_deeply_nested",
        lambda ctx: f"Bearer {b64url(b'[' * 100_000 + b']' * 100_000)}.{json_segment(ctx.claims())}.AAAA",
    ),
    Row("bearer_glued_to_token", lambda ctx: f"Bearer{ctx.genuine()}"),
    Row("other_scheme_with_genuine_token", lambda ctx: f"Token {ctx.genuine()}"),
    # --- Basic carrying JWT-ish content
    Row("basic_with_raw_jwt", lambda ctx: f"Basic {ctx.genuine()}"),
    Row("basic_with_base64_jwt", lambda ctx: _basic_of(ctx.genuine())),
    Row("basic_app_id_and_jwt", lambda ctx: _basic_of(f"{ctx.app.id}:{ctx.genuine()}")),
    Row("basic_api_key_and_jwt", lambda ctx: _basic_of(f"{ctx.app.api_key}:{ctx.genuine()}")),
]


@pytest.mark.parametrize("row", REFUSED, ids=lambda row: row.name)
async def test_refused(row: Row, client: httpx.AsyncClient, runtime: Runtime, app: App) -> None:
    ctx = Ctx(client=client, runtime=runtime, app=app, jti=str(uuid.uuid4()))
    authorization = row.authorization(ctx)
    if inspect.isawaitable(authorization):
        authorization = await authorization
    before = await stored(runtime)

    assert_unauthorized(await send(client, authorization))

    after = await stored(runtime)
    assert (after.messages, after.jobs) == (before.messages, before.jobs)
    if row.replay_untouched:
        assert after.replays == before.replays
    if row.follow_up:
        response = await send(client, f"Bearer {ctx.genuine()}")
        assert response.status_code == 202, f"a refused token burned its jti: {response.text}"


# ---------------------------------------------------------------- replays


async def test_replayed_token_is_refused_and_stores_one_message(
    client: httpx.AsyncClient, runtime: Runtime, app: App
) -> None:
    token = app.sdk_token()
    before = await stored(runtime)
    first = await send(client, f"Bearer {token}")
    assert first.status_code == 202, first.text
    after_first = await stored(runtime)

    assert_unauthorized(await send(client, f"Bearer {token}"))

    assert await stored(runtime) == after_first
    assert after_first.messages == before.messages + 1
    async with runtime.database.engine.connect() as conn:
        query = select(messages.c.uuid).where(messages.c.application_id == app.id)
        rows = (await conn.execute(query)).scalars().all()
    assert rows == [first.json()["message_uuid"]]


async def test_same_jti_in_a_fresh_token_is_a_replay(client: httpx.AsyncClient, app: App) -> None:
    jti = str(uuid.uuid4())
    assert (await send(client, f"Bearer {app.sdk_token(jti=jti)}")).status_code == 202
    assert_unauthorized(await send(client, f"Bearer {app.sdk_token(jti=jti, iat=now() - 5)}"))


async def test_jti_is_scoped_to_its_application(
    client: httpx.AsyncClient, runtime: Runtime, app: App, account: NewAccountCredentials
) -> None:
    other = await create_application(runtime, account.api_key)
    jti = str(uuid.uuid4())
    assert (await send(client, f"Bearer {app.sdk_token(jti=jti)}")).status_code == 202
    assert (await send(client, f"Bearer {other.sdk_token(jti=jti)}")).status_code == 202


async def test_concurrent_replays_accept_exactly_one(
    client: httpx.AsyncClient, runtime: Runtime, app: App
) -> None:
    token = app.sdk_token()
    before = await stored(runtime)
    responses = await asyncio.gather(*(send(client, f"Bearer {token}") for _ in range(8)))
    assert sorted(r.status_code for r in responses) == [202] + [401] * 7
    for response in responses:
        if response.status_code == 401:
            assert_unauthorized(response)
    assert (await stored(runtime)).messages == before.messages + 1


# ---------------------------------------------------------------- accepted


ACCEPTED: list[tuple[str, Callable[[App], str]]] = [
    ("sdk_baseline", lambda app: app.sdk_token()),
    ("acl_star_messages_globstar", lambda app: app.sdk_token(acl={"paths": {"/*/messages/**": {}}})),
    ("acl_exact_path", lambda app: app.sdk_token(acl={"paths": {"/v1/messages": {}}})),
    (
        "acl_one_of_several_paths",
        lambda app: app.sdk_token(
            acl={"paths": {"/*/users/**": {}, "/*/messages/**": {"methods": ["POST"]}}}
        ),
    ),
    ("acl_globstar_only", lambda app: app.sdk_token(acl={"paths": {"/**": {}}})),
    ("iat_10s_in_the_future_within_leeway", lambda app: app.sdk_token(iat=now() + 10)),
    ("exp_passed_within_leeway", lambda app: app.sdk_token(iat=now() - 900, exp=now() - 10)),
    ("nbf_in_the_past", lambda app: app.sdk_token(nbf=now() - 10)),
    (
        "sub_and_extra_claims",
        lambda app: app.sdk_token(sub="alice", scope="anything", nested={"a": [1, 2]}, aud="someone"),
    ),
    ("lifetime_exactly_max", lambda app: app.sdk_token(exp=now() + MAX_LIFETIME)),
    (
        "no_exp_defaults_to_900s",
        lambda app: jwt.encode(
            {"application_id": app.id, "iat": now(), "jti": str(uuid.uuid4())},
            signing_key(app.private_pem),
            algorithm="RS256",
        ),
    ),
    ("jti_150_chars", lambda app: app.sdk_token(jti="j" * 150)),
]


@pytest.mark.parametrize(("name", "mint"), ACCEPTED, ids=[name for name, _ in ACCEPTED])
async def test_accepted(
    name: str, mint: Callable[[App], str], client: httpx.AsyncClient, runtime: Runtime, app: App
) -> None:
    before = await stored(runtime)
    response = await send(client, f"Bearer {mint(app)}")
    assert response.status_code == 202, f"{name}: {response.text}"
    after = await stored(runtime)
    assert after == Stored(before.messages + 1, before.jobs + 1, before.replays + 1)


async def test_scheme_is_case_insensitive(client: httpx.AsyncClient, app: App) -> None:
    assert (await send(client, f"bearer {app.sdk_token()}")).status_code == 202
    assert (await send(client, f"BEARER {app.sdk_token()}")).status_code == 202


# ---------------------------------------------------------------- Basic


def basic_header(api_key: str, secret: str) -> str:
    return _basic_of(f"{api_key}:{secret}")


BASIC_REFUSED: list[tuple[str, Callable[[NewAccountCredentials], str]]] = [
    ("wrong_secret", lambda acc: basic_header(acc.api_key, acc.api_secret + "x")),
    ("secret_of_other_case", lambda acc: basic_header(acc.api_key, acc.api_secret.swapcase())),
    ("unknown_key", lambda acc: basic_header("ffffffff", acc.api_secret)),
    ("empty_secret", lambda acc: basic_header(acc.api_key, "")),
    ("empty_key", lambda acc: basic_header("", acc.api_secret)),
    ("no_colon", lambda acc: _basic_of(acc.api_key + acc.api_secret)),
    ("secret_prefix", lambda acc: basic_header(acc.api_key, acc.api_secret[:-1])),
    ("not_base64", lambda acc: "Basic !!!!"),
    ("base64_not_utf8", lambda acc: "Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode()),
    ("basic_alone", lambda acc: "Basic"),
    ("unpadded_base64", lambda acc: basic_header(acc.api_key, acc.api_secret).rstrip("=") + "@"),
    ("oversized_key", lambda acc: basic_header("k" * 5000, acc.api_secret)),
    ("secret_with_nul", lambda acc: basic_header(acc.api_key, acc.api_secret + "\x00")),
    ("key_with_nul", lambda acc: basic_header(acc.api_key + "\x00", acc.api_secret)),
]


# A presented API key reaches the database only if it looks like one of ours (tidings/auth/basic.py):
# on PostgreSQL a NUL in a query parameter is a driver error, which would be a 500, not a 401.
@pytest.mark.parametrize(("name", "authorization"), BASIC_REFUSED, ids=[n for n, _ in BASIC_REFUSED])
async def test_basic_refused(
    name: str,
    authorization: Callable[[NewAccountCredentials], str],
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: NewAccountCredentials,
) -> None:
    before = await stored(runtime)
    assert_unauthorized(await send(client, authorization(account)))
    assert await stored(runtime) == before
    assert (await send(client, basic_header(account.api_key, account.api_secret))).status_code == 202


async def test_basic_secret_containing_colons(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    """The secret is everything after the first colon (RFC 7617); an API key cannot hold one."""
    secret = "pa:ss::w0rD:"
    async with runtime.database.begin() as conn:
        await conn.execute(
            insert(account_secrets).values(
                id=str(uuid.uuid4()),
                account_id=account.api_key,
                secret_hash=hash_secret(secret),
                created_at=datetime.now(UTC),
            )
        )
    before = await stored(runtime)
    assert (await send(client, basic_header(account.api_key, secret))).status_code == 202
    for wrong in ("pa", "pa:ss", "pa:ss::w0rD", "ss::w0rD:"):
        assert_unauthorized(await send(client, basic_header(account.api_key, wrong)))
    assert (await stored(runtime)).messages == before.messages + 1


async def test_basic_disabled_account(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    async with runtime.database.begin() as conn:
        await conn.execute(
            update(accounts).where(accounts.c.api_key == account.api_key).values(status="disabled")
        )
    before = await stored(runtime)
    assert_unauthorized(await send(client, basic_header(account.api_key, account.api_secret)))
    assert await stored(runtime) == before


async def test_basic_unknown_key_costs_a_full_verification(
    client: httpx.AsyncClient, account: NewAccountCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing sanity, not a timed test: an unknown key runs the same KDF verification (against a
    decoy hash) as a known key with a wrong secret, so response time does not reveal which API keys
    exist. Counting verifications is deterministic where measuring latency would be flaky.
    (An account with several secrets costs one verification per secret: that reveals only the
    number of secrets of a key the caller already names.)"""
    calls: list[str] = []
    real = basic_module.verify_secret

    def counting(secret_hash: str, secret: str) -> bool:
        calls.append(secret_hash)
        return real(secret_hash, secret)

    monkeypatch.setattr(basic_module, "verify_secret", counting)
    assert_unauthorized(await send(client, basic_header("ffffffff", "Wr0ngSecretValue")))
    unknown_calls = list(calls)
    calls.clear()
    assert_unauthorized(await send(client, basic_header(account.api_key, "Wr0ngSecretValue")))
    assert len(unknown_calls) == len(calls) == 1
    assert unknown_calls == [basic_module._DECOY_HASH]
