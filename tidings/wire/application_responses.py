"""Application API v2 (/v2/applications): the application and the list page as returned.

Shapes follow shared/specs/application.v2.yml (ApplicationResponse, ApplicationResponseCollection)
and the HAL links Vonage returns (`_links.self` on each application; self/first/last/prev/next on
a list page, as relative hrefs).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tidings.domain.application import Application
from tidings.services.applications import ApplicationPage

BASE_PATH = "/v2/applications"


class Link(BaseModel):
    href: str


class SelfLink(BaseModel):
    self: Link


class ReturnedKeys(BaseModel):
    public_key: str
    private_key: str | None = Field(None, description="Only in the response that created the key pair.")


class ApplicationResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: str
    name: str
    keys: ReturnedKeys
    capabilities: dict[str, Any]
    privacy: dict[str, Any] | None = None
    links: SelfLink = Field(alias="_links")


class PageLinks(BaseModel):
    self: Link
    first: Link
    last: Link
    prev: Link | None = None
    next: Link | None = None


class EmbeddedApplications(BaseModel):
    applications: list[ApplicationResponse]


class ApplicationList(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    page_size: int
    page: int
    total_items: int
    total_pages: int
    embedded: EmbeddedApplications = Field(alias="_embedded")
    links: PageLinks = Field(alias="_links")


def application_path(application_id: str) -> str:
    return f"{BASE_PATH}/{application_id}"


def _application_model(application: Application, private_key: str | None) -> ApplicationResponse:
    return ApplicationResponse(
        id=application.id,
        name=application.name,
        keys=ReturnedKeys(public_key=application.public_key, private_key=private_key),
        capabilities=application.capabilities,
        privacy=application.privacy,
        links=SelfLink(self=Link(href=application_path(application.id))),
    )


def render_application(application: Application, *, private_key: str | None = None) -> dict[str, Any]:
    """The application as the spec returns it; `private_key` only when it was just generated."""
    return _application_model(application, private_key).model_dump(by_alias=True, exclude_none=True)


def render_page(page: ApplicationPage) -> dict[str, Any]:
    def link(number: int | None = None) -> Link:
        query = f"page_size={page.page_size}" + (f"&page={number}" if number is not None else "")
        return Link(href=f"{BASE_PATH}?{query}")

    body = ApplicationList(
        page_size=page.page_size,
        page=page.page,
        total_items=page.total_items,
        total_pages=page.total_pages,
        embedded=EmbeddedApplications(
            applications=[_application_model(app, None) for app in page.applications]
        ),
        links=PageLinks(
            self=link(page.page),
            first=link(),
            last=link(page.total_pages),
            prev=link(min(page.page, page.total_pages + 1) - 1) if page.page > 1 else None,
            next=link(page.page + 1) if page.page < page.total_pages else None,
        ),
    )
    return body.model_dump(by_alias=True, exclude_none=True)
