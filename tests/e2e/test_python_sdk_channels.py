"""Every message model of the official Python SDK (vonage-messages), sent through one real
`tidings serve --tls` as users send them: with Basic credentials, and with an application's JWT
(RCS); each accepted, its status webhooks signed and on their way to `delivered`, and to `read` on
the channels with read receipts. Then the SDK's PATCH helpers: marking inbound WhatsApp messages
read (with and without the replying indicator) and revoking an undelivered RCS message.

The models are found by looking in `vonage_messages.models`, so a model a new SDK adds fails here
until it has an example below, rather than going untested."""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import version
from typing import Any

import pytest
import vonage_messages.models
from vonage import Auth, HttpClientOptions, Vonage
from vonage_application import ApplicationConfig, ApplicationUrl, Capabilities, Messages, MessagesWebhooks
from vonage_http_client.errors import HttpRequestError
from vonage_messages.models import (
    BaseMessage,
    MessengerAudio,
    MessengerFile,
    MessengerImage,
    MessengerOptions,
    MessengerResource,
    MessengerText,
    MessengerVideo,
    MmsAudio,
    MmsContent,
    MmsContentItemAudio,
    MmsContentItemFile,
    MmsContentItemImage,
    MmsContentItemVcard,
    MmsContentItemVideo,
    MmsFile,
    MmsImage,
    MmsResource,
    MmsText,
    MmsVcard,
    MmsVideo,
    RcsCard,
    RcsCardMessage,
    RcsCarousel,
    RcsCarouselMessage,
    RcsCustom,
    RcsFile,
    RcsImage,
    RcsOptions,
    RcsOptionsCard,
    RcsOptionsCarousel,
    RcsResource,
    RcsSuggestionActionCreateCalendarEvent,
    RcsSuggestionActionDial,
    RcsSuggestionActionOpenUrl,
    RcsSuggestionActionOpenUrlWebview,
    RcsSuggestionActionShareLocation,
    RcsSuggestionActionViewLocation,
    RcsSuggestionReply,
    RcsText,
    RcsVideo,
    ReplyingIndicatorText,
    Sms,
    SmsOptions,
    ViberAction,
    ViberFile,
    ViberFileOptions,
    ViberFileResource,
    ViberImage,
    ViberImageOptions,
    ViberImageResource,
    ViberText,
    ViberTextOptions,
    ViberVideo,
    ViberVideoOptions,
    ViberVideoResource,
    WhatsappAudio,
    WhatsappAudioResource,
    WhatsappContext,
    WhatsappCustom,
    WhatsappFile,
    WhatsappFileResource,
    WhatsappImage,
    WhatsappImageResource,
    WhatsappSticker,
    WhatsappStickerId,
    WhatsappTemplate,
    WhatsappTemplateResource,
    WhatsappTemplateSettings,
    WhatsappText,
    WhatsappVideo,
    WhatsappVideoResource,
)

from tests.e2e.channel_matrix import (
    DELIVERED_NEVER_READ,
    MESSENGER_PAGE,
    MESSENGER_USER,
    MMS_PHONE,
    MMS_SENDER,
    NEVER_ANSWERS,
    PHONE,
    RCS_AGENT,
    SMS_SENDER,
    VIBER_SERVICE,
    WHATSAPP_BUSINESS,
    WHATSAPP_USER,
    Sent,
    accepted_result,
    inbound_whatsapp,
    link_whatsapp,
    message_view,
    outcomes,
    render,
    wait_for_statuses,
)
from tests.e2e.conftest import SharedServer
from tests.e2e.server import Credentials, TidingsServer
from tests.receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

MEDIA = "https://media.example.com"
SDK_VERSION = version("vonage-messages")
JWT_CHANNELS = frozenset({"rcs"})  # sent with the application's JWT; the rest with Basic


# --- the models, found by looking ---------------------------------------------------------------


def message_models() -> dict[str, type[BaseMessage]]:
    """Every concrete message model of the installed SDK: a BaseMessage whose channel and
    message_type are fixed (the per-channel bases leave message_type open)."""
    for module in pkgutil.iter_modules(vonage_messages.models.__path__):
        importlib.import_module(f"{vonage_messages.models.__name__}.{module.name}")
    found: dict[str, type[BaseMessage]] = {}
    pending: list[type[BaseMessage]] = [BaseMessage]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        fields = model.model_fields
        if "channel" in fields and "message_type" in fields and fields["message_type"].default is not None:
            found[model.__name__] = model
    return found


def test_every_message_model_has_an_example() -> None:
    """Fails when the SDK gains (or loses) a model, until EXAMPLES says how to build it."""
    found = message_models()
    assert len(found) >= 30, sorted(found)  # the discovery itself works (1.8.1 has 32)
    assert sorted(found) == sorted(EXAMPLES)
    kinds = {
        (model.model_fields["channel"].default.value, model.model_fields["message_type"].default.value)
        for model in found.values()
    }
    assert len(kinds) == len(found)  # one model per channel and type


# --- an example of each, with representative values ----------------------------------------------


@dataclass(frozen=True)
class Ctx:
    """What the examples need from the run: the inbound message a reply quotes."""

    inbound_uuid: str


def _suggestions() -> list[Any]:
    return [
        RcsSuggestionReply(text="Yes please", postback_data="reply-yes"),
        RcsSuggestionActionDial(
            text="Call us", postback_data="dial", phone_number="447700900555", fallback_url=f"{MEDIA}/call"
        ),
        RcsSuggestionActionViewLocation(
            text="Find us",
            postback_data="view-location",
            latitude="51.5072",
            longitude="-0.1276",
            pin_label="Acme HQ",
            fallback_url=f"{MEDIA}/map",
        ),
        RcsSuggestionActionShareLocation(text="Share location", postback_data="share-location"),
        RcsSuggestionActionOpenUrl(
            text="Track", postback_data="open-url", url=f"{MEDIA}/track", description="Track your parcel"
        ),
        RcsSuggestionActionOpenUrlWebview(
            text="Choose a slot",
            postback_data="webview",
            url=f"{MEDIA}/slots",
            description="Choose a delivery slot",
            view_mode="TALL",
        ),
        RcsSuggestionActionCreateCalendarEvent(
            text="Add to calendar",
            postback_data="calendar",
            start_time="2030-01-01T10:00:00Z",
            end_time="2030-01-01T11:00:00Z",
            title="Delivery",
            description="Your parcel arrives",
            fallback_url=f"{MEDIA}/calendar",
        ),
    ]


def _card(n: int) -> RcsCard:
    return RcsCard(
        title=f"Trainers {n}",
        text="Our best seller, now in blue.",
        media_url=f"{MEDIA}/trainers-{n}.jpg",
        media_description="A pair of blue trainers",
        media_height="MEDIUM",
        thumbnail_url=f"{MEDIA}/trainers-{n}-thumb.jpg",
        media_force_refresh=False,
        suggestions=[
            RcsSuggestionReply(text="Buy", postback_data=f"buy-{n}"),
            RcsSuggestionActionOpenUrl(
                text="Details", postback_data=f"details-{n}", url=f"{MEDIA}/p/{n}", description="Details"
            ),
        ],
    )


_SMS = {"to": PHONE, "from_": SMS_SENDER}
_MMS = {"to": MMS_PHONE, "from_": MMS_SENDER, "ttl": 600}
_WA = {"to": WHATSAPP_USER, "from_": WHATSAPP_BUSINESS}
_FB = {"to": MESSENGER_USER, "from_": MESSENGER_PAGE}
_VB = {"to": PHONE, "from_": VIBER_SERVICE}
_RCS = {"to": PHONE, "from_": RCS_AGENT, "ttl": 3600}
_ACTION = ViberAction(url=f"{MEDIA}/track", text="Track order")

Example = Callable[[Ctx, dict[str, Any]], BaseMessage]

EXAMPLES: dict[str, Example] = {
    "Sms": lambda c, x: Sms(
        **_SMS,
        **x,
        text="Your code is 6287",
        ttl=900,
        trusted_recipient=True,
        sms=SmsOptions(encoding_type="text", content_id="1107161234567890123", entity_id="1101456789"),
    ),
    "MmsText": lambda c, x: MmsText(**_MMS, **x, text="Your order has shipped"),
    "MmsImage": lambda c, x: MmsImage(**_MMS, **x, image=MmsResource(url=f"{MEDIA}/a.jpg", caption="Parcel")),
    "MmsAudio": lambda c, x: MmsAudio(**_MMS, **x, audio=MmsResource(url=f"{MEDIA}/a.mp3")),
    "MmsVideo": lambda c, x: MmsVideo(
        **_MMS, **x, video=MmsResource(url=f"{MEDIA}/a.mp4", caption="Unboxing")
    ),
    "MmsFile": lambda c, x: MmsFile(**_MMS, **x, file=MmsResource(url=f"{MEDIA}/invoice.pdf")),
    "MmsVcard": lambda c, x: MmsVcard(**_MMS, **x, vcard=MmsResource(url=f"{MEDIA}/acme.vcf")),
    "MmsContent": lambda c, x: MmsContent(
        **_MMS,
        **x,
        content=[
            MmsContentItemImage(url=f"{MEDIA}/a.jpg", caption="Front"),
            MmsContentItemAudio(url=f"{MEDIA}/a.mp3"),
            MmsContentItemVideo(url=f"{MEDIA}/a.mp4"),
            MmsContentItemFile(url=f"{MEDIA}/a.pdf", caption="Manual"),
            MmsContentItemVcard(url=f"{MEDIA}/acme.vcf"),
        ],
    ),
    "WhatsappText": lambda c, x: WhatsappText(
        **_WA, **x, text="Thanks, we are on it", context=WhatsappContext(message_uuid=c.inbound_uuid)
    ),
    "WhatsappImage": lambda c, x: WhatsappImage(
        **_WA, **x, image=WhatsappImageResource(url=f"{MEDIA}/a.jpg", caption="Your parcel")
    ),
    "WhatsappAudio": lambda c, x: WhatsappAudio(
        **_WA, **x, audio=WhatsappAudioResource(url=f"{MEDIA}/a.mp3")
    ),
    "WhatsappVideo": lambda c, x: WhatsappVideo(
        **_WA, **x, video=WhatsappVideoResource(url=f"{MEDIA}/a.mp4", caption="How to")
    ),
    "WhatsappFile": lambda c, x: WhatsappFile(
        **_WA, **x, file=WhatsappFileResource(url=f"{MEDIA}/a.pdf", caption="Invoice", name="invoice.pdf")
    ),
    "WhatsappTemplate": lambda c, x: WhatsappTemplate(
        **_WA,
        **x,
        template=WhatsappTemplateResource(
            name="9b6b4fcb_da19_4a26_8fe8_78074a91b584:verify", parameters=["6287"]
        ),
        whatsapp=WhatsappTemplateSettings(locale="en_GB", policy="deterministic"),
    ),
    "WhatsappSticker": lambda c, x: WhatsappSticker(
        **_WA, **x, sticker=WhatsappStickerId(id="13aaecab-2485-4255-a0a7-97a2a3f55d8d")
    ),
    "WhatsappCustom": lambda c, x: WhatsappCustom(
        **_WA,
        **x,
        custom={
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": "Was your delivery on time?"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                        {"type": "reply", "reply": {"id": "no", "title": "No"}},
                    ]
                },
            },
        },
    ),
    "MessengerText": lambda c, x: MessengerText(
        **_FB,
        **x,
        text="Your booking is confirmed",
        messenger=MessengerOptions(category="message_tag", tag="CONFIRMED_EVENT_UPDATE"),
    ),
    "MessengerImage": lambda c, x: MessengerImage(
        **_FB,
        **x,
        image=MessengerResource(url=f"{MEDIA}/a.jpg"),
        messenger=MessengerOptions(category="response"),
    ),
    "MessengerAudio": lambda c, x: MessengerAudio(**_FB, **x, audio=MessengerResource(url=f"{MEDIA}/a.mp3")),
    "MessengerVideo": lambda c, x: MessengerVideo(**_FB, **x, video=MessengerResource(url=f"{MEDIA}/a.mp4")),
    "MessengerFile": lambda c, x: MessengerFile(
        **_FB,
        **x,
        file=MessengerResource(url=f"{MEDIA}/a.pdf"),
        messenger=MessengerOptions(category="update"),
    ),
    "ViberText": lambda c, x: ViberText(
        **_VB,
        **x,
        text="Your parcel is on its way",
        viber_service=ViberTextOptions(category="transaction", ttl=600, type="string", action=_ACTION),
    ),
    "ViberImage": lambda c, x: ViberImage(
        **_VB,
        **x,
        image=ViberImageResource(url=f"{MEDIA}/a.jpg", caption="Spring sale"),
        viber_service=ViberImageOptions(category="promotion", action=_ACTION),
    ),
    "ViberVideo": lambda c, x: ViberVideo(
        **_VB,
        **x,
        video=ViberVideoResource(url=f"{MEDIA}/a.mp4", thumb_url=f"{MEDIA}/a-thumb.jpg", caption="How to"),
        viber_service=ViberVideoOptions(category="transaction", duration="42", file_size="7"),
    ),
    "ViberFile": lambda c, x: ViberFile(
        **_VB,
        **x,
        file=ViberFileResource(url=f"{MEDIA}/a.pdf", name="invoice.pdf"),
        viber_service=ViberFileOptions(category="transaction", ttl=3600),
    ),
    "RcsText": lambda c, x: RcsText(
        **_RCS,
        **x,
        text="Your parcel arrives tomorrow. Anything else?",
        suggestions=_suggestions(),
        rcs=RcsOptions(category="transaction"),
    ),
    "RcsImage": lambda c, x: RcsImage(**_RCS, **x, image=RcsResource(url=f"{MEDIA}/a.jpg")),
    "RcsVideo": lambda c, x: RcsVideo(**_RCS, **x, video=RcsResource(url=f"{MEDIA}/a.mp4")),
    "RcsFile": lambda c, x: RcsFile(**_RCS, **x, file=RcsResource(url=f"{MEDIA}/a.pdf")),
    "RcsCardMessage": lambda c, x: RcsCardMessage(
        **_RCS,
        **x,
        card=_card(1),
        rcs=RcsOptionsCard(category="promotion", card_orientation="VERTICAL"),
    ),
    "RcsCarouselMessage": lambda c, x: RcsCarouselMessage(
        **_RCS,
        **x,
        carousel=RcsCarousel(cards=[_card(1), _card(2), _card(3)]),
        suggestions=[RcsSuggestionReply(text="More", postback_data="more")],
        rcs=RcsOptionsCarousel(category="promotion", card_width="MEDIUM"),
    ),
    "RcsCustom": lambda c, x: RcsCustom(
        **_RCS,
        **x,
        custom={
            "contentMessage": {
                "text": "Pick a size",
                "suggestions": [{"reply": {"text": "42", "postbackData": "size-42"}}],
            }
        },
    ),
}


# --- the module's server, account and application ------------------------------------------------


@dataclass
class Setup:
    server: TidingsServer
    credentials: Credentials
    application_id: str
    private_key: str
    receiver: WebhookReceiver

    def options(self) -> HttpClientOptions:
        host = f"127.0.0.1:{self.server.tls_port}"
        return HttpClientOptions(api_host=host, rest_host=host, timeout=10, max_retries=0)

    @cached_property
    def basic(self) -> Vonage:
        return Vonage(
            Auth(api_key=self.credentials.api_key, api_secret=self.credentials.api_secret), self.options()
        )

    @cached_property
    def jwt(self) -> Vonage:
        return Vonage(Auth(application_id=self.application_id, private_key=self.private_key), self.options())


@pytest.fixture(scope="module")
def setup(module_server: SharedServer) -> Iterator[Setup]:
    """The module's account, an application whose status URL is the receiver's /app-status, and
    the account's WhatsApp business number linked to that application."""
    server, credentials = module_server.server, module_server.credentials
    with pytest.MonkeyPatch.context() as patch, WebhookReceiver() as receiver:
        # requests (under the SDK) reads the CA bundle from the environment on every request.
        patch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_path))
        host = f"127.0.0.1:{server.tls_port}"
        vonage = Vonage(
            Auth(api_key=credentials.api_key, api_secret=credentials.api_secret),
            HttpClientOptions(api_host=host, rest_host=host, timeout=10, max_retries=0),
        )
        application = vonage.application.create_application(
            ApplicationConfig(
                name="Python SDK channels",
                capabilities=Capabilities(
                    messages=Messages(
                        webhooks=MessagesWebhooks(
                            inbound_url=ApplicationUrl(address=f"{receiver.url}/inbound", http_method="POST"),
                            status_url=ApplicationUrl(
                                address=f"{receiver.url}/app-status", http_method="POST"
                            ),
                        ),
                        version="v1",
                    )
                ),
            )
        )
        assert application.keys is not None
        private_key = (application.keys.model_extra or {}).get("private_key")
        assert isinstance(private_key, str) and private_key.startswith("-----BEGIN PRIVATE KEY-----")
        link_whatsapp(server, credentials, application.id)
        yield Setup(server, credentials, application.id, private_key, receiver)


def send(setup: Setup, name: str, model: type[BaseMessage], ctx: Ctx) -> Sent:
    """Sends the model's example; JWT channels without a webhook_url (so to the application's
    status URL), the rest with their own. A model without an example is refused here."""
    channel = model.model_fields["channel"].default.value
    message_type = model.model_fields["message_type"].default.value
    jwt = channel in JWT_CHANNELS
    client_ref = f"py-{name}"
    build = EXAMPLES.get(name)
    if build is None:
        return Sent(name, channel, message_type, "?", "?", client_ref, "?", refused="no example in EXAMPLES")
    extra: dict[str, Any] = {"client_ref": client_ref}
    if not jwt:
        extra["webhook_url"] = f"{setup.receiver.url}/status/{name}"
    message = build(ctx, extra)
    assert type(message) is model
    body = message.model_dump(by_alias=True, exclude_none=True)
    sent = Sent(
        sdk_class=name,
        channel=channel,
        message_type=message_type,
        to=body["to"],
        sender=body["from"],
        client_ref=client_ref,
        webhook_path="/app-status" if jwt else f"/status/{name}",
        application_id=setup.application_id if jwt else None,
    )
    client = setup.jwt if jwt else setup.basic
    try:
        response = client.messages.send(message)
    except HttpRequestError as error:
        sent.refused = f"{error.response.status_code} {error.response.text}"
        return sent
    assert client.http_client.last_response.status_code == 202
    sent.uuid = response.message_uuid
    return sent


# --- the tests ------------------------------------------------------------------------------------


def test_every_message_model_is_accepted_and_its_statuses_arrive_signed(setup: Setup) -> None:
    ctx = Ctx(inbound_uuid=inbound_whatsapp(setup.server, setup.credentials, "Where is my parcel?"))
    sent = [send(setup, name, model, ctx) for name, model in sorted(message_models().items())]

    cells = outcomes(sent, setup.receiver, setup.credentials)
    print("\n" + render(f"Python SDK (vonage-messages {SDK_VERSION}): channel, type → result", sent, cells))

    assert cells == {s.sdk_class: accepted_result(s.channel) for s in sent}
    assert {s.channel for s in sent} == {"sms", "mms", "whatsapp", "messenger", "viber_service", "rcs"}
    assert len({s.uuid for s in sent}) == len(sent) >= 30
    # Stored as what the SDK said it is.
    for s in sent:
        assert s.uuid is not None
        view = message_view(setup.server, setup.credentials, s.uuid)
        assert (view["channel"], view["message_type"], view["direction"]) == (
            s.channel,
            s.message_type,
            "outbound",
        )


def test_mark_whatsapp_message_read_with_and_without_the_replying_indicator(setup: Setup) -> None:
    plain = inbound_whatsapp(setup.server, setup.credentials, "Hello?")
    typing = inbound_whatsapp(setup.server, setup.credentials, "Anyone there?")
    for uuid in (plain, typing):
        view = message_view(setup.server, setup.credentials, uuid)
        assert (view["direction"], view["channel"]) == ("inbound", "whatsapp")
        assert view["status"] != "read"
    client = setup.basic

    client.messages.mark_whatsapp_message_read(plain)
    assert client.http_client.last_response.status_code == 200
    assert json.loads(client.http_client.last_response.request.body) == {"status": "read"}
    client.messages.mark_whatsapp_message_read(typing, ReplyingIndicatorText(show=True))
    assert client.http_client.last_response.status_code == 200
    assert json.loads(client.http_client.last_response.request.body) == {
        "status": "read",
        "replying_indicator": {"show": True, "type": "text"},
    }

    assert message_view(setup.server, setup.credentials, plain)["status"] == "read"
    assert message_view(setup.server, setup.credentials, typing)["status"] == "read"
    # The same through the application's JWT, on a message already read: still 200.
    setup.jwt.messages.mark_whatsapp_message_read(plain)
    assert setup.jwt.http_client.last_response.status_code == 200
    # Outbound messages are not the client's to mark read.
    outbound = setup.basic.messages.send(
        WhatsappText(
            to=WHATSAPP_USER, from_=WHATSAPP_BUSINESS, text="Hi", webhook_url=f"{setup.receiver.url}/x"
        )
    )
    with pytest.raises(HttpRequestError) as refused:
        client.messages.mark_whatsapp_message_read(outbound.message_uuid)
    assert refused.value.response.status_code == 422, refused.value.response.text


def test_revoke_rcs_message_before_it_is_delivered(setup: Setup) -> None:
    client = setup.jwt
    pending = client.messages.send(
        RcsText(
            to=NEVER_ANSWERS, from_=RCS_AGENT, text="Offer ends soon", webhook_url=f"{setup.receiver.url}/r"
        )
    ).message_uuid
    delivered = client.messages.send(
        RcsText(to=DELIVERED_NEVER_READ, from_=RCS_AGENT, text="Hi", webhook_url=f"{setup.receiver.url}/r")
    ).message_uuid
    wait_for_statuses(setup.receiver, {pending: ["submitted"], delivered: ["delivered"]}, timeout=15)
    assert message_view(setup.server, setup.credentials, pending)["status"] == "submitted"
    assert message_view(setup.server, setup.credentials, delivered)["status"] == "delivered"

    client.messages.revoke_rcs_message(pending)
    assert client.http_client.last_response.status_code == 200
    assert message_view(setup.server, setup.credentials, pending)["status"] == "revoked"

    # A delivered message can no longer be taken back.
    with pytest.raises(HttpRequestError) as refused:
        client.messages.revoke_rcs_message(delivered)
    assert refused.value.response.status_code == 422, refused.value.response.text
    assert message_view(setup.server, setup.credentials, delivered)["status"] == "delivered"
