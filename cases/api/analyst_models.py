"""Request bodies and parameters of the analyst API.

Every body model forbids unknown fields (SECURITY B3): a body naming ``entity_id``,
``created_by``, ``role`` … is a 422 naming the field.

Case bodies are the case service's own models (``CaseDraft``, ``CaseChanges``) and the
advisory body is ``AdvisoryDraft``; they forbid extra fields as well.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from cases.api.problems import Problem, field_error
from cases.services.paging import MAX_PAGE
from pukara.core.schema import MAX_TEXT, MAX_TITLE

#: the most alert ids one triage request may name
MAX_IDS = 10_000
AlertIds = list[int]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AlertSelection(_Body):
    """``POST alerts/ack``: the alerts to acknowledge."""

    ids: AlertIds = Field(min_length=1, max_length=MAX_IDS)


class Dismissal(AlertSelection):
    """``POST alerts/dismiss``: the alerts and one of the triage service's reasons."""

    reason: str = Field(min_length=1, max_length=64)


class Promotion(AlertSelection):
    """``POST alerts/promote``: a new case (optional title) or an existing one (``case``)."""

    title: str | None = Field(default=None, min_length=1, max_length=MAX_TITLE)
    case: str | None = Field(default=None, min_length=1, max_length=64)


class GroupAction(_Body):
    """``POST alerts/groups/{key}``: one action on every alert of a group."""

    action: Literal["ack", "dismiss", "reopen"]
    reason: str | None = Field(default=None, min_length=1, max_length=64)


class CaseClosing(_Body):
    """``POST cases/{ref}/close``: resolution and summary, both required."""

    resolution: str = Field(min_length=1, max_length=32)
    summary: str = Field(min_length=1, max_length=MAX_TEXT)


class CaseMerge(_Body):
    """``POST cases/{ref}/merge``: the case merged into ``{ref}``."""

    source: str = Field(min_length=1, max_length=64)


class NewTask(_Body):
    """``POST cases/{ref}/tasks``."""

    title: str = Field(min_length=1, max_length=MAX_TITLE)
    owner: str | None = Field(default=None, min_length=1, max_length=100)
    due_at: datetime | None = None
    notes: str = Field(default="", max_length=MAX_TEXT)


class TaskChange(_Body):
    """``PATCH tasks/{id}``: a new status (with an optional note) or a new owner."""

    status: str | None = Field(default=None, min_length=1, max_length=32)
    owner: str | None = Field(default=None, min_length=1, max_length=100)
    note: str | None = Field(default=None, max_length=MAX_TEXT)

    @model_validator(mode="after")
    def _one_change(self) -> TaskChange:
        if (self.status is None) == (self.owner is None):
            raise ValueError("send either 'status' or 'owner'")
        return self


class Note(_Body):
    """``POST cases/{ref}/notes``: a timeline entry, optionally dated (time zone needed)."""

    text: str = Field(min_length=1, max_length=MAX_TEXT)
    event_at: datetime | None = None


class Comment(_Body):
    """``POST cases/{ref}/comments``."""

    text: str = Field(min_length=1, max_length=MAX_TEXT)


# -- query and path parameters ---------------------------------------------------------
def _printable(value: str) -> str:
    if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value):
        raise ValueError("the search text holds a control character")
    return value


Text = Annotated[str, Query(max_length=2000, description="the search syntax"),
                 AfterValidator(_printable)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
RefPath = Annotated[str, Path(min_length=1, max_length=64)]
Sort = Annotated[str, Query(max_length=32, description="one of the allow-listed orders")]


def allowed(name: str, value: str | None, choices: tuple[str, ...] | frozenset[str]) -> None:
    """422 naming the query parameter unless ``value`` is one of ``choices`` (B11)."""
    if value is not None and value not in choices:
        raise Problem(422, f"unknown {name}", errors=[field_error(
            name, f"{name} must be one of: {', '.join(sorted(choices))}", ["query", name])])
