"""Notification templates: one per message kind and language, rendered in a Jinja2 sandbox.

The first line of a template is the subject; the rest is the plain-text body. Templates come
from this package, overridable per installation (``$PUKARA_HOME/templates/notify``), so a
template is treated as semi-trusted: rendering uses ``SandboxedEnvironment`` (no attribute
walk to ``__class__``/``__mro__``, SECURITY K5) with ``StrictUndefined`` (a name outside the
context, such as ``{{ config }}``, is refused, not silently blank) and autoescape for HTML
templates. The context is built only from the explicit, typed fields of :class:`Fields`,
never from settings, so no secret can be reached. Values are data, never template source:
a case title of ``{{ config }}`` is printed as those characters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jinja2 import (
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

from pukara.core.errors import InvalidInput

PACKAGED = Path(__file__).resolve().parent / "templates"
KINDS = ("case-opened", "report-update", "entity-notice", "advisory-published",
         "approval-needed")
LANGUAGES = ("es", "en")
#: every name a template may use; anything else is refused
FIELDS = ("center", "entity_name", "case_number", "case_title", "classification", "severity",
          "tlp", "tracking_number", "stage", "due", "message", "headline", "advisory_number",
          "advisory_title", "summary", "step_name", "step_id", "run_id", "role", "prompt",
          "playbook_title")
MAX_FIELD = 4000
#: fields that may span lines; every other field is folded to one line (it may reach a subject)
MULTILINE = frozenset({"message", "summary", "prompt"})


class TemplateRefused(InvalidInput):
    """A template that fails in the sandbox (unsafe access, unknown name, syntax)."""


@dataclass(frozen=True)
class Rendered:
    """A rendered message: one-line subject, plain-text body."""

    subject: str
    body: str


def safe_context(values: Mapping[str, object]) -> dict[str, str]:
    """Only the known fields, each as plain text (no objects reach the template); one-line
    fields have CR, LF and control characters folded (SECURITY D11)."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown template field {unknown[0]!r}", field="context")
    context = {}
    for name in FIELDS:
        text = ("" if values.get(name) is None else str(values.get(name)))[:MAX_FIELD]
        context[name] = text if name in MULTILINE else one_line(text)
    return context


class Templates:
    """The template set of one installation."""

    def __init__(self, override: Path | None = None) -> None:
        loaders = [FileSystemLoader(str(override))] if override and override.is_dir() else []
        loaders.append(FileSystemLoader(str(PACKAGED)))
        self.env = SandboxedEnvironment(
            loader=ChoiceLoader(loaders), undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            keep_trailing_newline=False)

    def render(self, kind: str, language: str, values: Mapping[str, object]) -> Rendered:
        """Render the ``kind`` template in ``language`` (falls back to Spanish)."""
        if kind not in KINDS:
            raise InvalidInput(f"unknown message kind {kind!r}", field="kind")
        language = language if language in LANGUAGES else "es"
        return self._render(f"{kind}.{language}.txt", safe_context(values))

    def render_source(self, source: str, values: Mapping[str, object]) -> Rendered:
        """Render a template given as text (an administrator's draft) in the same sandbox."""
        try:
            template = self.env.from_string(source)
        except TemplateError as exc:
            raise TemplateRefused(f"template refused: {exc}", field="template") from exc
        return self._split(self._run(template, safe_context(values)))

    def _render(self, name: str, context: dict[str, str]) -> Rendered:
        try:
            template = self.env.get_template(name)
        except TemplateError as exc:
            raise TemplateRefused(f"template {name} refused: {exc}", field="template") from exc
        return self._split(self._run(template, context))

    @staticmethod
    def _run(template: object, context: dict[str, str]) -> str:
        try:
            return str(template.render(context))  # type: ignore[attr-defined]
        except TemplateError as exc:
            raise TemplateRefused(f"template refused: {type(exc).__name__}: {exc}",
                                  field="template") from exc

    @staticmethod
    def _split(text: str) -> Rendered:
        subject, _, body = text.partition("\n")
        return Rendered(subject=one_line(subject), body=body.strip("\n") + "\n")


def one_line(text: str) -> str:
    """A header-safe line: CR, LF and other control characters folded to spaces (D11)."""
    cleaned = "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in text)
    return " ".join(cleaned.split())[:900]
