"""The v1 send request on the wire: what parses, what is refused and under which wire name (spec §2, §3, §10)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, StringConstraints, ValidationError
from vonage_messages import Sms
from vonage_messages import SmsOptions as SdkSmsOptions

from tidings.domain.channel_options import SmsOptions
from tidings.domain.content import Text
from tidings.domain.errors import (
    InvalidMessageType,
    InvalidParameter,
    InvalidParams,
    TidingsError,
    UnsupportedChannel,
)
from tidings.domain.message import Channel, MessageType, Status, WebhookVersion
from tidings.domain.sms_encoding import SmsEncoding
from tidings.store.content_codec import encode
from tidings.wire.messages_v1 import parse_send_request, request_body_schema, to_message
from tidings.wire.messages_v1.sms import SmsText
from tidings.wire.validation_errors import invalid_parameters

VALID: dict[str, Any] = {
    "channel": "sms",
    "message_type": "text",
    "to": "447700900000",
    "from": "Acme",
    "text": "Hello from Tidings",
}

# The exact rule the spec gives `to` (vonage_utils PhoneNumber), and the three sender forms Tidings
# accepts for SMS: a number, a short code, or an alphanumeric sender ID of at most 11 characters.
PHONE_NUMBER = re.compile(r"[1-9][0-9]{6,14}")
SHORT_CODE = re.compile(r"[0-9]{3,8}")
ALPHANUMERIC = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9][A-Za-z0-9 _.&+\-]{0,9}[A-Za-z0-9._&+\-]?")


def with_(**changes: Any) -> dict[str, Any]:
    body = dict(VALID)
    for name, value in changes.items():
        body["from" if name == "from_" else name] = value
    return body


def without(name: str) -> dict[str, Any]:
    return {key: value for key, value in VALID.items() if key != name}


def refused_names(body: Any) -> list[str]:
    with pytest.raises(InvalidParams) as caught:
        parse_send_request(body)
    reasons = [p.reason for p in caught.value.invalid_parameters]
    assert all(reason and reason.endswith(".") for reason in reasons), reasons
    return [p.name for p in caught.value.invalid_parameters]


# --- accepted ------------------------------------------------------------------------------------

ACCEPTED = [
    pytest.param(with_(from_="Acme"), id="alphanumeric-sender"),
    pytest.param(with_(from_="ABCDEFGHIJK"), id="alphanumeric-sender-11-chars"),
    pytest.param(with_(from_="A"), id="alphanumeric-sender-1-char"),
    pytest.param(with_(from_="Acme Ltd"), id="alphanumeric-sender-with-space"),
    pytest.param(with_(from_="A-B_C.D&E+F"), id="alphanumeric-sender-punctuation"),
    pytest.param(with_(from_="1A"), id="alphanumeric-sender-leading-digit"),
    pytest.param(with_(from_="447700900001"), id="numeric-sender"),
    pytest.param(with_(from_="123456789012345"), id="numeric-sender-15-digits"),
    pytest.param(with_(from_="123"), id="short-code-3"),
    pytest.param(with_(from_="12345678"), id="short-code-8"),
    pytest.param(with_(to="1234567"), id="to-7-digits"),
    pytest.param(with_(to="123456789012345"), id="to-15-digits"),
    pytest.param(with_(text="a" * 3200), id="text-3200"),
    pytest.param(with_(text="x"), id="text-1"),
    pytest.param(with_(text="Привет, мир 👋 你好 ✓"), id="unicode-text"),
    pytest.param(with_(sms={"encoding_type": "text"}), id="encoding-text"),
    pytest.param(with_(sms={"encoding_type": "unicode"}), id="encoding-unicode"),
    pytest.param(with_(sms={"encoding_type": "auto"}), id="encoding-auto"),
    pytest.param(
        with_(sms={"content_id": "1107161234567890", "entity_id": "1101456789012345"}), id="dlt-ids"
    ),
    pytest.param(with_(sms={"pool_id": "pool-1"}), id="pool-id"),
    pytest.param(with_(sms={}), id="empty-sms-object"),
    pytest.param(with_(ttl=20), id="ttl-min"),
    pytest.param(with_(ttl=604800), id="ttl-max"),
    pytest.param(with_(client_ref="r" * 100), id="client-ref-100"),
    pytest.param(with_(client_ref=""), id="client-ref-empty"),
    pytest.param(with_(webhook_url="https://example.com/status?x=1"), id="webhook-https"),
    pytest.param(with_(webhook_url="http://127.0.0.1:8080/status"), id="webhook-http"),
    pytest.param(with_(webhook_version="v1"), id="webhook-version-v1"),
    pytest.param(with_(webhook_version="v0.1"), id="webhook-version-v0.1"),
    pytest.param(with_(trusted_recipient=True), id="trusted-true"),
    pytest.param(with_(trusted_recipient=False), id="trusted-false"),
    pytest.param(with_(client_ref=None, ttl=None, sms=None), id="explicit-nulls-for-optional"),
    pytest.param(with_(unknown_member={"x": 1}), id="unknown-member-ignored"),
]


@pytest.mark.parametrize("body", ACCEPTED)
def test_accepted_requests_parse_to_the_sms_text_model(body: dict[str, Any]) -> None:
    parsed = parse_send_request(body)
    assert isinstance(parsed, SmsText)
    assert parsed.channel is Channel.SMS
    assert parsed.message_type is MessageType.TEXT
    assert parsed.to == body["to"]
    assert parsed.from_ == body["from"]
    assert parsed.to_content() == Text(body["text"])
    sms = body.get("sms")
    expected_options = (
        SmsOptions(**{k: v for k, v in sms.items() if v is not None}) if sms is not None else None
    )
    assert parsed.to_options() == expected_options
    assert parsed.ttl_seconds == body.get("ttl")
    assert parsed.trusted == body.get("trusted_recipient")
    assert parsed.client_ref == body.get("client_ref")
    assert parsed.webhook_url == body.get("webhook_url")
    expected_version = WebhookVersion(body["webhook_version"]) if "webhook_version" in body else None
    assert parsed.webhook_version == expected_version


def test_to_message_carries_every_field_into_the_domain() -> None:
    body = with_(
        client_ref="ref-9",
        webhook_url="https://example.com/s",
        webhook_version="v0.1",
        ttl=3600,
        trusted_recipient=True,
        sms={"encoding_type": "unicode", "entity_id": "E1", "content_id": "C1", "pool_id": "P1"},
    )
    created = datetime(2025, 2, 3, 12, 14, 25, tzinfo=UTC)
    message = to_message(
        parse_send_request(body),
        uuid="u-1",
        account_id="abcd1234",
        application_id="app-1",
        created_at=created,
    )
    assert message.uuid == "u-1"
    assert message.account_id == "abcd1234"
    assert message.application_id == "app-1"
    assert message.channel is Channel.SMS
    assert message.message_type is MessageType.TEXT
    assert (message.to, message.sender) == ("447700900000", "Acme")
    assert message.content == Text("Hello from Tidings")
    assert message.options == SmsOptions(
        encoding_type=SmsEncoding.UNICODE, entity_id="E1", content_id="C1", pool_id="P1"
    )
    assert message.client_ref == "ref-9"
    assert message.webhook_url == "https://example.com/s"
    assert message.webhook_version is WebhookVersion.V0_1
    assert message.ttl == 3600
    assert message.trusted_recipient is True
    assert message.created_at == created
    assert message.status is Status.ACCEPTED


def test_options_are_stored_as_plain_json_values() -> None:
    """The options object is stored as JSON: enum members must leave as their strings."""
    parsed = parse_send_request(with_(sms={"encoding_type": "unicode"}))
    stored = encode(parsed.to_options())
    assert json.loads(json.dumps(stored)) == {"encoding_type": "unicode"}
    assert type(stored["encoding_type"]) is str


def test_what_the_official_sdk_sends_is_accepted() -> None:
    """The Vonage SDK's own model, serialised as `Messages.send` does, parses field for field."""
    sdk = Sms(
        to="447700900000",
        from_="Acme",
        text="hi",
        ttl=600,
        client_ref="r-1",
        webhook_url="https://example.com/s",
        webhook_version="v1",
        trusted_recipient=True,
        sms=SdkSmsOptions(encoding_type="unicode", content_id="c", entity_id="e", pool_id="p"),
    )
    body = json.loads(json.dumps(sdk.model_dump(mode="json", by_alias=True, exclude_none=True)))
    parsed = parse_send_request(body)
    assert (parsed.to, parsed.from_, parsed.to_content()) == ("447700900000", "Acme", Text("hi"))
    assert parsed.to_options() == SmsOptions(
        encoding_type=SmsEncoding.UNICODE, content_id="c", entity_id="e", pool_id="p"
    )
    assert (parsed.ttl_seconds, parsed.trusted, parsed.client_ref) == (600, True, "r-1")


# --- refused: invalid parameters (#1150) ---------------------------------------------------------

REFUSED = [
    # to
    pytest.param(with_(to="+447700900000"), ["to"], id="to-plus"),
    pytest.param(with_(to="00447700900000"), ["to"], id="to-00"),
    pytest.param(with_(to="0447700900000"), ["to"], id="to-leading-zero"),
    pytest.param(with_(to="123456"), ["to"], id="to-6-digits"),
    pytest.param(with_(to="1234567890123456"), ["to"], id="to-16-digits"),
    pytest.param(with_(to="44 7700 900000"), ["to"], id="to-spaces"),
    pytest.param(with_(to="447700900000\n"), ["to"], id="to-trailing-newline"),
    pytest.param(
        with_(to="4" + "\u0664\u0667\u0667\u0660\u0660\u0669\u0660\u0660\u0660\u0660\u0660"),
        ["to"],
        id="to-arabic-indic-digits",
    ),
    pytest.param(with_(to=""), ["to"], id="to-empty"),
    pytest.param(with_(to=447700900000), ["to"], id="to-integer"),
    pytest.param(with_(to=None), ["to"], id="to-null"),
    pytest.param(with_(to=["447700900000"]), ["to"], id="to-array"),
    # from
    pytest.param(with_(from_="ABCDEFGHIJKL"), ["from"], id="from-12-chars"),
    pytest.param(with_(from_="Acme!"), ["from"], id="from-bang"),
    pytest.param(with_(from_="Äcme"), ["from"], id="from-non-ascii"),
    pytest.param(with_(from_=" Acme"), ["from"], id="from-leading-space"),
    pytest.param(with_(from_="Acme\n"), ["from"], id="from-trailing-newline"),
    pytest.param(with_(from_="12"), ["from"], id="from-2-digits"),
    pytest.param(with_(from_="1234567890123456"), ["from"], id="from-16-digits"),
    pytest.param(with_(from_="+447700900001"), ["from"], id="from-plus"),
    pytest.param(with_(from_="\u0661\u0662\u0663\u0664\u0665"), ["from"], id="from-arabic-indic-short-code"),
    pytest.param(with_(from_=""), ["from"], id="from-empty"),
    pytest.param(with_(from_=12345), ["from"], id="from-integer"),
    # text
    pytest.param(with_(text=""), ["text"], id="text-empty"),
    pytest.param(with_(text="a" * 3201), ["text"], id="text-3201"),
    pytest.param(with_(text=42), ["text"], id="text-integer"),
    pytest.param(with_(text=None), ["text"], id="text-null"),
    pytest.param(with_(text={"body": "hi"}), ["text"], id="text-object"),
    # ttl
    pytest.param(with_(ttl=19), ["ttl"], id="ttl-19"),
    pytest.param(with_(ttl=604801), ["ttl"], id="ttl-604801"),
    pytest.param(with_(ttl=-1), ["ttl"], id="ttl-negative"),
    pytest.param(with_(ttl="3600"), ["ttl"], id="ttl-string"),
    pytest.param(with_(ttl=3600.5), ["ttl"], id="ttl-fraction"),
    pytest.param(with_(ttl=3600.0), ["ttl"], id="ttl-float"),
    pytest.param(with_(ttl=True), ["ttl"], id="ttl-bool"),
    # client_ref
    pytest.param(with_(client_ref="r" * 101), ["client_ref"], id="client-ref-101"),
    pytest.param(with_(client_ref=7), ["client_ref"], id="client-ref-integer"),
    pytest.param(with_(client_ref="a\x00b"), ["client_ref"], id="client-ref-nul"),
    # webhook_url
    pytest.param(with_(webhook_url="ftp://example.com/status"), ["webhook_url"], id="webhook-ftp"),
    pytest.param(with_(webhook_url="example.com/status"), ["webhook_url"], id="webhook-no-scheme"),
    pytest.param(with_(webhook_url="https://"), ["webhook_url"], id="webhook-scheme-only"),
    pytest.param(with_(webhook_url="https://exa mple.com/"), ["webhook_url"], id="webhook-space"),
    pytest.param(with_(webhook_url="https://example.com/\x00"), ["webhook_url"], id="webhook-nul"),
    pytest.param(
        with_(webhook_url="https://example.com/" + "a" * 2048), ["webhook_url"], id="webhook-too-long"
    ),
    pytest.param(with_(webhook_url=5), ["webhook_url"], id="webhook-integer"),
    # webhook_version
    pytest.param(with_(webhook_version="v2"), ["webhook_version"], id="webhook-version-v2"),
    pytest.param(with_(webhook_version="V1"), ["webhook_version"], id="webhook-version-case"),
    pytest.param(with_(webhook_version=1), ["webhook_version"], id="webhook-version-integer"),
    # trusted_recipient
    pytest.param(with_(trusted_recipient="true"), ["trusted_recipient"], id="trusted-string"),
    pytest.param(with_(trusted_recipient=1), ["trusted_recipient"], id="trusted-integer"),
    # sms options
    pytest.param(with_(sms="unicode"), ["sms"], id="sms-string"),
    pytest.param(with_(sms=["unicode"]), ["sms"], id="sms-array"),
    pytest.param(with_(sms={"encoding_type": "binary"}), ["sms.encoding_type"], id="encoding-binary"),
    pytest.param(with_(sms={"encoding_type": "UNICODE"}), ["sms.encoding_type"], id="encoding-case"),
    pytest.param(with_(sms={"encoding_type": 1}), ["sms.encoding_type"], id="encoding-integer"),
    pytest.param(with_(sms={"content_id": ""}), ["sms.content_id"], id="content-id-empty"),
    pytest.param(with_(sms={"entity_id": "e" * 101}), ["sms.entity_id"], id="entity-id-101"),
    pytest.param(with_(sms={"pool_id": 5}), ["sms.pool_id"], id="pool-id-integer"),
    # missing fields
    pytest.param(without("to"), ["to"], id="missing-to"),
    pytest.param(without("from"), ["from"], id="missing-from"),
    pytest.param(without("text"), ["text"], id="missing-text"),
    pytest.param(without("channel"), ["channel"], id="missing-channel"),
    pytest.param(with_(channel=None), ["channel"], id="null-channel"),
    pytest.param(without("message_type"), ["message_type"], id="missing-message-type"),
    # not an object
    pytest.param([VALID], ["body"], id="body-array"),
    pytest.param(42, ["body"], id="body-number"),
    pytest.param("sms", ["body"], id="body-string"),
    pytest.param(None, ["body"], id="body-null"),
]


@pytest.mark.parametrize(("body", "names"), REFUSED)
def test_invalid_requests_name_the_bad_field_by_its_wire_name(body: Any, names: list[str]) -> None:
    assert refused_names(body) == names


def test_several_bad_fields_are_all_listed_once_each() -> None:
    body = with_(
        to="+1",
        from_="way too long sender",
        text="",
        ttl=5,
        client_ref="r" * 101,
        webhook_version="v9",
        trusted_recipient="yes",
        sms={"encoding_type": "binary", "pool_id": ""},
    )
    names = refused_names(body)
    assert sorted(names) == sorted(
        [
            "to",
            "from",
            "text",
            "ttl",
            "client_ref",
            "webhook_version",
            "trusted_recipient",
            "sms.encoding_type",
            "sms.pool_id",
        ]
    )


def test_several_missing_fields_are_all_listed() -> None:
    names = refused_names({"channel": "sms", "message_type": "text"})
    assert sorted(names) == ["from", "text", "to"]


def test_invalid_params_error_has_the_spec_shape() -> None:
    with pytest.raises(InvalidParams) as caught:
        parse_send_request(with_(ttl=19))
    error = caught.value
    assert error.status == 422
    assert error.type_url == "https://developer.vonage.com/api-errors/messages#1150"
    assert error.title == "Invalid params"
    assert error.detail == "The value of one or more parameters is invalid."
    assert error.extra() == {
        "invalid_parameters": [{"name": "ttl", "reason": "input should be greater than or equal to 20."}]
    }


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (without("to"), "is required."),
        (with_(to=5), "must be a string."),
        (with_(ttl="5"), "must be an integer."),
        (with_(trusted_recipient="no"), "must be a boolean."),
        (with_(sms="x"), "must be an object."),
    ],
)
def test_reasons_are_plain_sentences(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        parse_send_request(body)
    assert [p.reason for p in caught.value.invalid_parameters] == [reason]


# --- refused: channel and message type -----------------------------------------------------------


@pytest.mark.parametrize("channel", ["fax", "SMS", "", 5, ["sms"], {"name": "sms"}, True])
def test_unknown_channel_is_1100(channel: Any) -> None:
    with pytest.raises(UnsupportedChannel) as caught:
        parse_send_request(with_(channel=channel))
    assert caught.value.status == 422
    assert caught.value.type_url == "https://developer.vonage.com/api-errors/messages#1100"
    assert caught.value.title == "Unsupported channel"


@pytest.mark.parametrize(
    "message_type", ["image", "audio", "template", "custom", "nonsense", "TEXT", 5, ["text"]]
)
def test_sms_with_unsupported_message_type_is_1140(message_type: Any) -> None:
    with pytest.raises(InvalidMessageType) as caught:
        parse_send_request(with_(message_type=message_type))
    assert caught.value.status == 422
    assert caught.value.type_url == "https://developer.vonage.com/api-errors/messages#1140"
    assert caught.value.title == "Invalid message type"


def test_channel_is_decided_before_the_payload_is_validated() -> None:
    """An unsupported channel is reported as such, not as a list of bad fields for another channel."""
    with pytest.raises(UnsupportedChannel):
        parse_send_request({"channel": "fax", "to": "+1", "text": ""})
    with pytest.raises(InvalidMessageType):
        parse_send_request({"channel": "sms", "message_type": "image", "to": "+1"})


# --- the validation-error mapping itself ---------------------------------------------------------


class _Inner(BaseModel):
    level: int


class _ByUrl(BaseModel):
    url: str


class _ById(BaseModel):
    id: str


class _Outer(BaseModel):
    from_: str = Field(alias="from")
    inner: _Inner
    items: list[int]
    either: int | str
    sticker: _ByUrl | _ById
    bounded: Annotated[str, StringConstraints(max_length=2)] | Annotated[int, Field(ge=5)]


def test_invalid_parameters_uses_aliases_dotted_paths_and_drops_union_branch_names() -> None:
    with pytest.raises(ValidationError) as caught:
        _Outer.model_validate(
            {"inner": {"level": "x"}, "items": [1, "y"], "either": [], "sticker": {}, "bounded": "xyz"}
        )
    params = invalid_parameters(caught.value)
    names = [p.name for p in params]
    # one entry per wire name even when every branch of a union failed; branch names never leak
    assert names == ["from", "inner.level", "items.1", "either", "sticker.url", "sticker.id", "bounded"]
    assert params[0] == InvalidParameter("from", "is required.")


def test_invalid_parameters_names_the_body_for_a_root_error() -> None:
    with pytest.raises(ValidationError) as caught:
        _Inner.model_validate("not an object")
    assert [p.name for p in invalid_parameters(caught.value)] == ["body"]


# --- properties ----------------------------------------------------------------------------------


def is_e164(value: str) -> bool:
    """7 to 15 digits, no prefix, starting with a country calling code that exists."""
    return bool(PHONE_NUMBER.fullmatch(value)) and any(
        int(value[:size]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE for size in (1, 2, 3)
    )


@given(st.one_of(st.text(max_size=20), st.from_regex(PHONE_NUMBER, fullmatch=True)))
def test_to_is_accepted_exactly_when_it_is_an_e164_number_without_prefix(to: str) -> None:
    try:
        parse_send_request(with_(to=to))
    except InvalidParams as error:
        assert [p.name for p in error.invalid_parameters] == ["to"]
        assert not is_e164(to)
    else:
        assert is_e164(to)


@pytest.mark.parametrize("to", ["2801234567", "2891234567", "9991234567"])
def test_a_number_without_a_country_calling_code_is_refused(to: str) -> None:
    assert PHONE_NUMBER.fullmatch(to)  # the SDK's pattern alone would take it
    assert refused_names(with_(to=to)) == ["to"]


@given(
    st.one_of(
        st.text(max_size=16),
        st.from_regex(ALPHANUMERIC, fullmatch=True),
        st.from_regex(SHORT_CODE, fullmatch=True),
    )
)
def test_sms_sender_is_a_number_a_short_code_or_an_alphanumeric_id(sender: str) -> None:
    allowed = bool(
        PHONE_NUMBER.fullmatch(sender)
        or SHORT_CODE.fullmatch(sender)
        or (len(sender) <= 11 and ALPHANUMERIC.fullmatch(sender))
    )
    try:
        parse_send_request(with_(from_=sender))
    except InvalidParams as error:
        assert [p.name for p in error.invalid_parameters] == ["from"]
        assert not allowed, sender
    else:
        assert allowed, sender


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            name: JSON_VALUES | st.just(value) for name, value in {**VALID, "ttl": 60, "sms": {}}.items()
        },
    )
)
def test_any_json_object_either_parses_or_raises_a_documented_error(body: dict[str, Any]) -> None:
    try:
        parse_send_request(body)
    except (InvalidParams, UnsupportedChannel, InvalidMessageType) as error:
        assert error.status == 422
    except TidingsError as error:  # pragma: no cover - a failure message, not a branch
        pytest.fail(f"undocumented error {error!r}")


# --- the OpenAPI description ---------------------------------------------------------------------


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def test_request_body_schema_is_self_contained_and_names_the_sms_fields() -> None:
    schema = request_body_schema()
    assert schema["required"] is True
    variants = schema["content"]["application/json"]["schema"]["oneOf"]
    # local `#/$defs/...` references would dangle once embedded in the OpenAPI document
    assert _refs(variants) == []
    assert "$defs" not in json.dumps(variants)
    sms = next(v for v in variants if "text" in v["properties"] and "sms" in v["properties"])
    assert {"channel", "message_type", "to", "from", "text", "ttl", "client_ref"} <= set(sms["properties"])
    assert {"channel", "message_type", "to", "from", "text"} <= set(sms["required"])
    encoding = json.dumps(sms["properties"]["sms"])
    assert all(value in encoding for value in ('"text"', '"unicode"', '"auto"'))
