"""Response bodies of the send endpoints."""

from __future__ import annotations

from pydantic import BaseModel


class SendMessageResponse(BaseModel):
    message_uuid: str


class ProblemDetails(BaseModel):
    type: str
    title: str
    detail: str
    instance: str


class ThrottledProblem(ProblemDetails):
    retry_after: int  # seconds, as the Retry-After header says
