"""`content_fields`: the v1 members of a message's content, for every content type, outbound ones
included (a message's view uses them too), in the request vocabulary of messages-v1.md §3 to §8."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tidings.domain.content import (
    Card,
    Carousel,
    Content,
    Custom,
    Media,
    MediaItem,
    MediaKind,
    MediaList,
    Reaction,
    ReactionAction,
    Sticker,
    Suggestion,
    SuggestionType,
    Template,
    Text,
)
from tidings.domain.message import MessageType, content_type
from tidings.webhooks.v1 import content_fields

REPLY = Suggestion(SuggestionType.REPLY, "Yes", "answer-yes")
DIAL = Suggestion(SuggestionType.DIAL, "Call us", "dial", phone_number="447700900000")
VIEW = Suggestion(
    SuggestionType.VIEW_LOCATION, "Find us", "where", latitude="51.5", longitude="-0.12", pin_label="Shop"
)
CARD = Card(
    title="Spring sale",
    text="Everything half price",
    media_url="https://media.example.com/sale.jpg",
    media_height="MEDIUM",
    media_force_refresh=False,
    suggestions=(REPLY,),
)

# id, message type, content, members
CASES: list[tuple[str, MessageType, Content, dict[str, Any]]] = [
    ("text", MessageType.TEXT, Text("Hello"), {"text": "Hello"}),
    (
        "rcs text with suggestions",
        MessageType.TEXT,
        Text("Pick one", suggestions=(REPLY, DIAL, VIEW)),
        {
            "text": "Pick one",
            "suggestions": [
                {"type": "reply", "text": "Yes", "postback_data": "answer-yes"},
                {"type": "dial", "text": "Call us", "postback_data": "dial", "phone_number": "447700900000"},
                {
                    "type": "view_location",
                    "text": "Find us",
                    "postback_data": "where",
                    "latitude": "51.5",
                    "longitude": "-0.12",
                    "pin_label": "Shop",
                },
            ],
        },
    ),
    (
        "video with a thumbnail",
        MessageType.VIDEO,
        Media(
            "https://media.example.com/v.mp4", caption="Trailer", thumb_url="https://media.example.com/t.jpg"
        ),
        {
            "video": {
                "url": "https://media.example.com/v.mp4",
                "caption": "Trailer",
                "thumb_url": "https://media.example.com/t.jpg",
            }
        },
    ),
    (
        "file with a name",
        MessageType.FILE,
        Media("https://media.example.com/f.pdf", name="terms.pdf"),
        {"file": {"url": "https://media.example.com/f.pdf", "name": "terms.pdf"}},
    ),
    (
        "mms content",
        MessageType.CONTENT,
        MediaList((MediaItem(MediaKind.AUDIO, "https://media.example.com/a.mp3", caption="Jingle"),)),
        {"content": [{"type": "audio", "url": "https://media.example.com/a.mp3", "caption": "Jingle"}]},
    ),
    (
        "template",
        MessageType.TEMPLATE,
        Template("order_update", parameters=("7", "Tuesday"), extra={"namespace": "acme"}),
        {"template": {"namespace": "acme", "name": "order_update", "parameters": ["7", "Tuesday"]}},
    ),
    (
        "template without parameters",
        MessageType.TEMPLATE,
        Template("welcome"),
        {"template": {"name": "welcome"}},
    ),
    (
        "template whose extra names a name",
        MessageType.TEMPLATE,
        Template("real", extra={"name": "overridden?"}),
        {"template": {"name": "real"}},
    ),
    ("sticker by id", MessageType.STICKER, Sticker(id="st-42"), {"sticker": {"id": "st-42"}}),
    (
        "custom",
        MessageType.CUSTOM,
        Custom({"type": "interactive", "interactive": {"type": "button"}}),
        {"custom": {"type": "interactive", "interactive": {"type": "button"}}},
    ),
    ("custom left out", MessageType.CUSTOM, Custom(None), {}),
    (
        "reaction",
        MessageType.REACTION,
        Reaction(ReactionAction.REACT, "🎉"),
        {"reaction": {"action": "react", "emoji": "🎉"}},
    ),
    (
        "card",
        MessageType.CARD,
        CARD,
        {
            "card": {
                "title": "Spring sale",
                "text": "Everything half price",
                "media_url": "https://media.example.com/sale.jpg",
                "media_height": "MEDIUM",
                "media_force_refresh": False,
                "suggestions": [{"type": "reply", "text": "Yes", "postback_data": "answer-yes"}],
            }
        },
    ),
    (
        "carousel",
        MessageType.CAROUSEL,
        Carousel(
            cards=(CARD, Card(title="B", text="b", media_url="https://media.example.com/b.jpg")),
            suggestions=(DIAL,),
        ),
        {
            "carousel": {
                "cards": [
                    {
                        "title": "Spring sale",
                        "text": "Everything half price",
                        "media_url": "https://media.example.com/sale.jpg",
                        "media_height": "MEDIUM",
                        "media_force_refresh": False,
                        "suggestions": [{"type": "reply", "text": "Yes", "postback_data": "answer-yes"}],
                    },
                    {"title": "B", "text": "b", "media_url": "https://media.example.com/b.jpg"},
                ]
            },
            "suggestions": [
                {"type": "dial", "text": "Call us", "postback_data": "dial", "phone_number": "447700900000"}
            ],
        },
    ),
    (
        "carousel without suggestions",
        MessageType.CAROUSEL,
        Carousel(cards=(Card(title="B", text="b", media_url="https://media.example.com/b.jpg"),)),
        {
            "carousel": {
                "cards": [{"title": "B", "text": "b", "media_url": "https://media.example.com/b.jpg"}]
            }
        },
    ),
]


def test_every_outbound_content_type_has_a_case() -> None:
    outbound = {content_type(case[1]) for case in CASES}
    assert {Text, Media, MediaList, Template, Sticker, Custom, Reaction, Card, Carousel} <= outbound
    for _, message_type, content, _ in CASES:
        assert isinstance(content, content_type(message_type))


@pytest.mark.parametrize(
    ("message_type", "content", "members"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_content_fields(message_type: MessageType, content: Content, members: dict[str, Any]) -> None:
    fields = content_fields(message_type, content)
    assert fields == members
    # As JSON: enum members go out as their plain values, nothing else changes.
    assert json.loads(json.dumps(fields)) == members
