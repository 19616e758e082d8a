"""Every send the Python SDK's models can build is accepted, on SQLite and PostgreSQL.

The message classes are discovered in `vonage_messages.models` (every subclass of BaseMessage that
fixes its channel and message type), so a model a new SDK adds fails here until it has a
representative send below. Each is sent twice: with every member filled (`full`) and with its
required members only (`required`, the SDK's defaults doing the rest), dumped exactly as
`Messages.send` dumps it, with the headers the SDK's HTTP client sends. A second test checks that
these sends between them use every model class the module exports (options, resources, each
suggestion and content item), so none goes untried.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import vonage_messages.models as sdk
from pydantic import BaseModel
from sqlalchemy import select
from vonage_messages import SendMessageResponse

from tests.conformance.support import basic, message_classes, received, sdk_model_classes
from tidings.runtime import Runtime
from tidings.services.accounts import NewAccountCredentials
from tidings.store.tables import messages

TO = "447700900000"
FROM = "447700900001"
URL = "https://example.com"
COMMON: dict[str, Any] = {
    "client_ref": "sdk-ref",
    "webhook_url": f"{URL}/status",
    "webhook_version": sdk.WebhookVersion.V1,
}
SUGGESTIONS: list[BaseModel] = [
    sdk.RcsSuggestionReply(text="Yes", postback_data="yes"),
    sdk.RcsSuggestionActionDial(
        text="Call us", postback_data="dial", phone_number="447900000000", fallback_url=f"{URL}/contact"
    ),
    sdk.RcsSuggestionActionViewLocation(
        text="Find us",
        postback_data="where",
        latitude="51.5230",
        longitude="-0.0852",
        pin_label="Vonage London",
        fallback_url=f"{URL}/map",
    ),
    sdk.RcsSuggestionActionShareLocation(text="Share your location", postback_data="share"),
    sdk.RcsSuggestionActionOpenUrl(text="Website", postback_data="url", url=URL, description="Our site"),
    sdk.RcsSuggestionActionOpenUrlWebview(
        text="Open here", postback_data="webview", url=URL, description="Our site", view_mode="TALL"
    ),
    sdk.RcsSuggestionActionCreateCalendarEvent(
        text="Save the date",
        postback_data="calendar",
        start_time="2025-05-01T10:00:00Z",
        end_time="2025-05-01T11:00:00Z",
        title="Launch",
        description="The product launch",
        fallback_url=f"{URL}/launch",
    ),
]


def _card(title: str, suggestions: list[Any]) -> sdk.RcsCard:
    return sdk.RcsCard(
        title=title,
        text="A card with everything on it",
        media_url=f"{URL}/image.jpg",
        media_description="An image",
        media_height=sdk.RcsMediaHeight.MEDIUM,
        thumbnail_url=f"{URL}/thumb.jpg",
        media_force_refresh=False,
        suggestions=suggestions,
    )


def _mms(**fields: Any) -> dict[str, Any]:
    return {"to": TO, "from_": FROM, "ttl": 600, "trusted_recipient": True, **COMMON, **fields}


def _whatsapp(**fields: Any) -> dict[str, Any]:
    context = sdk.WhatsappContext(message_uuid="aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab")
    return {"to": TO, "from_": FROM, "context": context, **COMMON, **fields}


def _messenger(**fields: Any) -> dict[str, Any]:
    options = sdk.MessengerOptions(category="message_tag", tag="CONFIRMED_EVENT_UPDATE")
    return {"to": "0123456789", "from_": "9876543210", "messenger": options, **COMMON, **fields}


def _rcs(**fields: Any) -> dict[str, Any]:
    fields.setdefault("rcs", sdk.RcsOptions(category=sdk.RcsCategory.TRANSACTION))
    return {"to": TO, "from_": "Vonage-Agent_1", "ttl": 600, "trusted_recipient": True, **COMMON, **fields}


def _viber(**fields: Any) -> dict[str, Any]:
    return {"to": TO, "from_": "Acme", **COMMON, **fields}


ACTION = sdk.ViberAction(url=f"{URL}/offer", text="See the offer")

# Representative sends, by model class name: each builds its class with every member filled.
SENDS: dict[str, list[Callable[[], BaseModel]]] = {
    "Sms": [
        lambda: sdk.Sms(
            to=TO,
            from_="Acme",
            text="Hello from the SDK",
            ttl=600,
            trusted_recipient=True,
            sms=sdk.SmsOptions(
                encoding_type=sdk.EncodingType.UNICODE, content_id="c-1", entity_id="e-1", pool_id="p-1"
            ),
            **COMMON,
        )
    ],
    "MmsText": [lambda: sdk.MmsText(**_mms(text="An MMS text"))],
    "MmsImage": [lambda: sdk.MmsImage(**_mms(image=sdk.MmsResource(url=f"{URL}/a.jpg", caption="An image")))],
    "MmsAudio": [lambda: sdk.MmsAudio(**_mms(audio=sdk.MmsResource(url=f"{URL}/a.mp3", caption="A sound")))],
    "MmsVideo": [lambda: sdk.MmsVideo(**_mms(video=sdk.MmsResource(url=f"{URL}/a.mp4", caption="A clip")))],
    "MmsFile": [lambda: sdk.MmsFile(**_mms(file=sdk.MmsResource(url=f"{URL}/a.vcf", caption="A file")))],
    "MmsVcard": [lambda: sdk.MmsVcard(**_mms(vcard=sdk.MmsResource(url=f"{URL}/a.vcf", caption="A card")))],
    "MmsContent": [
        lambda: sdk.MmsContent(
            **_mms(
                content=[
                    sdk.MmsContentItemImage(url=f"{URL}/a.jpg", caption="An image"),
                    sdk.MmsContentItemAudio(url=f"{URL}/a.mp3", caption="A sound"),
                    sdk.MmsContentItemVideo(url=f"{URL}/a.mp4", caption="A clip"),
                    sdk.MmsContentItemFile(url=f"{URL}/a.pdf", caption="A file"),
                    sdk.MmsContentItemVcard(url=f"{URL}/a.vcf", caption="A card"),
                ]
            )
        )
    ],
    "WhatsappText": [lambda: sdk.WhatsappText(**_whatsapp(text="Hello on WhatsApp"))],
    "WhatsappImage": [
        lambda: sdk.WhatsappImage(
            **_whatsapp(image=sdk.WhatsappImageResource(url=f"{URL}/a.jpg", caption="An image"))
        )
    ],
    "WhatsappAudio": [
        lambda: sdk.WhatsappAudio(**_whatsapp(audio=sdk.WhatsappAudioResource(url=f"{URL}/a.mp3")))
    ],
    "WhatsappVideo": [
        lambda: sdk.WhatsappVideo(
            **_whatsapp(video=sdk.WhatsappVideoResource(url=f"{URL}/a.mp4", caption="A clip"))
        )
    ],
    "WhatsappFile": [
        lambda: sdk.WhatsappFile(
            **_whatsapp(file=sdk.WhatsappFileResource(url=f"{URL}/a.pdf", caption="A file", name="a.pdf"))
        )
    ],
    "WhatsappTemplate": [
        lambda: sdk.WhatsappTemplate(
            **_whatsapp(
                template=sdk.WhatsappTemplateResource(name="order_update", parameters=["Ada", "#42"]),
                whatsapp=sdk.WhatsappTemplateSettings(locale="en_GB", policy="deterministic"),
            )
        )
    ],
    "WhatsappSticker": [
        lambda: sdk.WhatsappSticker(**_whatsapp(sticker=sdk.WhatsappStickerUrl(url=f"{URL}/a.webp"))),
        lambda: sdk.WhatsappSticker(**_whatsapp(sticker=sdk.WhatsappStickerId(id="13aaecab-2485"))),
    ],
    "WhatsappCustom": [
        lambda: sdk.WhatsappCustom(
            **_whatsapp(custom={"type": "location", "location": {"latitude": 51.52, "longitude": -0.08}})
        )
    ],
    "MessengerText": [lambda: sdk.MessengerText(**_messenger(text="Hello on Messenger"))],
    "MessengerImage": [
        lambda: sdk.MessengerImage(**_messenger(image=sdk.MessengerResource(url=f"{URL}/a.jpg")))
    ],
    "MessengerAudio": [
        lambda: sdk.MessengerAudio(**_messenger(audio=sdk.MessengerResource(url=f"{URL}/a.mp3")))
    ],
    "MessengerVideo": [
        lambda: sdk.MessengerVideo(**_messenger(video=sdk.MessengerResource(url=f"{URL}/a.mp4")))
    ],
    "MessengerFile": [
        lambda: sdk.MessengerFile(**_messenger(file=sdk.MessengerResource(url=f"{URL}/a.pdf")))
    ],
    "ViberText": [
        lambda: sdk.ViberText(
            **_viber(
                text="Hello on Viber",
                viber_service=sdk.ViberTextOptions(
                    category="transaction", ttl=600, type="string", action=ACTION
                ),
            )
        )
    ],
    "ViberImage": [
        lambda: sdk.ViberImage(
            **_viber(
                image=sdk.ViberImageResource(url=f"{URL}/a.jpg", caption="An image"),
                viber_service=sdk.ViberImageOptions(
                    category="promotion", ttl=600, type="string", action=ACTION
                ),
            )
        )
    ],
    "ViberVideo": [
        lambda: sdk.ViberVideo(
            **_viber(
                video=sdk.ViberVideoResource(url=f"{URL}/a.mp4", thumb_url=f"{URL}/t.jpg", caption="A clip"),
                viber_service=sdk.ViberVideoOptions(
                    category="transaction", ttl=600, type="string", duration="60", file_size="10"
                ),
            )
        )
    ],
    "ViberFile": [
        lambda: sdk.ViberFile(
            **_viber(
                file=sdk.ViberFileResource(url=f"{URL}/a.pdf", name="a.pdf"),
                viber_service=sdk.ViberFileOptions(category="transaction", ttl=600, type="string"),
            )
        )
    ],
    "RcsText": [lambda: sdk.RcsText(**_rcs(text="Pick one", suggestions=SUGGESTIONS))],
    "RcsImage": [lambda: sdk.RcsImage(**_rcs(image=sdk.RcsResource(url=f"{URL}/a.jpg")))],
    "RcsVideo": [lambda: sdk.RcsVideo(**_rcs(video=sdk.RcsResource(url=f"{URL}/a.mp4")))],
    "RcsFile": [lambda: sdk.RcsFile(**_rcs(file=sdk.RcsResource(url=f"{URL}/a.pdf")))],
    "RcsCardMessage": [
        lambda: sdk.RcsCardMessage(
            **_rcs(
                card=_card("A card", SUGGESTIONS[:4]),
                rcs=sdk.RcsOptionsCard(
                    category=sdk.RcsCategory.PROMOTION,
                    card_orientation=sdk.RcsCardOrientation.HORIZONTAL,
                    image_alignment=sdk.RcsImageAlignment.LEFT,
                ),
            )
        ),
        lambda: sdk.RcsCardMessage(
            **_rcs(
                card=_card("A card", SUGGESTIONS[4:]),
                rcs=sdk.RcsOptionsCard(card_orientation=sdk.RcsCardOrientation.VERTICAL),
            )
        ),
    ],
    "RcsCarouselMessage": [
        lambda: sdk.RcsCarouselMessage(
            **_rcs(
                carousel=sdk.RcsCarousel(
                    cards=[_card("One", SUGGESTIONS[:2]), _card("Two", SUGGESTIONS[2:4])]
                ),
                suggestions=SUGGESTIONS,
                rcs=sdk.RcsOptionsCarousel(
                    category=sdk.RcsCategory.PROMOTION, card_width=sdk.RcsCardWidth.MEDIUM
                ),
            )
        )
    ],
    "RcsCustom": [
        lambda: sdk.RcsCustom(**_rcs(custom={"contentMessage": {"text": "Hello", "suggestions": []}}))
    ],
}


def required_only(full: BaseModel) -> BaseModel:
    """The same class built from its required members alone: the SDK's defaults fill the rest."""
    cls = type(full)
    return cls(
        **{name: getattr(full, name) for name, field in cls.model_fields.items() if field.is_required()}
    )


def sends() -> Iterator[Any]:
    for cls in message_classes():
        yield pytest.param(cls, id=cls.__name__)


def walk(value: Any) -> Iterator[BaseModel]:
    if isinstance(value, BaseModel):
        yield value
        for name in type(value).model_fields:
            yield from walk(getattr(value, name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from walk(item)


def test_sends_between_them_use_every_model_class_the_sdk_exports() -> None:
    built = [build() for builders in SENDS.values() for build in builders]
    built.append(sdk.ReplyingIndicatorText(show=True))  # PATCH's, sent by the test below
    used = {type(model) for message in built for model in walk(message)}
    exported = sdk_model_classes()
    # A base class counts as used through any subclass of it that was built.
    unused = {cls.__name__ for cls in exported if not any(issubclass(kind, cls) for kind in used)}
    assert not unused, f"no send builds these SDK models: {sorted(unused)}"
    assert {type(message).__name__ for message in built} >= {cls.__name__ for cls in message_classes()}


@pytest.mark.parametrize("cls", list(sends()))
async def test_what_the_sdk_model_sends_is_accepted(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, cls: type[BaseModel]
) -> None:
    builders = SENDS.get(cls.__name__)
    assert builders, f"{cls.__name__} is a new SDK message model: add a representative send to SENDS"
    for build in builders:
        full = build()
        assert type(full) is cls
        for message in (full, required_only(full)):
            body = message.model_dump(by_alias=True, exclude_none=True)  # as Messages.send dumps it
            await assert_accepted(client, runtime, account, body)


async def assert_accepted(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, body: dict[str, Any]
) -> None:
    # The headers the SDK's HTTP client sends with a JSON body; json.dumps as `requests` does it.
    headers = {**basic(account), "Accept": "application/json", "Content-Type": "application/json"}
    response = await client.post("/v1/messages", content=json.dumps(body).encode(), headers=headers)
    assert response.status_code == 202, f"{json.dumps(body)}\n→ {response.status_code} {response.text}"
    message_uuid = SendMessageResponse(**response.json()).message_uuid
    async with runtime.database.engine.connect() as conn:
        row = (await conn.execute(select(messages).where(messages.c.uuid == message_uuid))).mappings().one()
    assert (row["channel"], row["message_type"]) == (body["channel"], body["message_type"])
    assert (row["to_address"], row["from_address"]) == (body["to"], body["from"])
    assert row["client_ref"] == body.get("client_ref")


async def test_the_sdk_marks_a_whatsapp_message_read_with_its_replying_indicator(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    inbound = {"channel": "whatsapp", "message_type": "text", "to": FROM, "from": TO, "text": "Hello"}
    message_uuid = await received(client, runtime, account, inbound)
    # As Messages.mark_whatsapp_message_read builds its body.
    indicator = sdk.ReplyingIndicatorText(show=True)
    body = {"status": "read", "replying_indicator": indicator.model_dump(by_alias=True, exclude_none=True)}
    response = await client.patch(f"/v1/messages/{message_uuid}", json=body, headers=basic(account))
    assert response.status_code == 200, response.text
    async with runtime.database.engine.connect() as conn:
        row = (await conn.execute(select(messages).where(messages.c.uuid == message_uuid))).mappings().one()
    assert row["status"] == "read"
