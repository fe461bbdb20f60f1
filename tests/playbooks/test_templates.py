"""Notification templates (SECURITY K5): a sandbox, a context of explicit fields only, values
that are data and never template source, both languages for every kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbooks.notify.templates import FIELDS, KINDS, TemplateRefused, Templates, safe_context
from pukara.core.errors import InvalidInput

PAYLOADS = ("{{ config }}", "{{ ''.__class__.__mro__ }}",
            "{{ ''.__class__.__mro__[1].__subclasses__() }}", "{% raw %}{{ 7*7 }}{% endraw %}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("language", ["es", "en"])
def test_every_kind_in_both_languages(kind: str, language: str) -> None:
    rendered = Templates().render(kind, language, {"center": "CNSD", "case_number": "CASE-1"})
    assert rendered.subject.startswith("CNSD: ")
    assert "\n" not in rendered.subject
    assert rendered.body.endswith("\n")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_in_values_are_printed_as_text(payload: str) -> None:
    rendered = Templates().render("case-opened", "en", {
        "center": "CNSD", "case_title": payload, "entity_name": payload,
        "case_number": "CASE-2026-000001"})
    assert f"Title: {payload}\n" in rendered.body
    assert rendered.body.startswith(f"Hello {payload},")
    assert "<class" not in rendered.body and "Settings" not in rendered.body


@pytest.mark.parametrize(("source", "why"), [
    ("{{ config }}\nbody", "'config' is undefined"),
    ("{{ ''.__class__.__mro__ }}\nbody",
     "access to attribute '__class__' of 'str' object is unsafe"),
    ("{{ case_title.__class__.__mro__[1].__subclasses__() }}\nb", "is unsafe"),
    ("{{ self._TemplateReference__context }}\nb", "is unsafe"),
    ("{% for x in %}\n", "TemplateSyntaxError"),
])
def test_payloads_in_templates_are_refused(source: str, why: str) -> None:
    with pytest.raises(TemplateRefused, match="template refused") as caught:
        Templates().render_source(source, {"case_title": "x"})
    assert why in str(caught.value) or why in type(caught.value.__cause__).__name__


def test_override_folder_is_sandboxed_too(tmp_path: Path) -> None:
    (tmp_path / "entity-notice.es.txt").write_text("{{ ''.__class__.__mro__ }}\nhola\n")
    (tmp_path / "entity-notice.en.txt").write_text("{{ center }} custom: {{ headline }}\nbody\n")
    templates = Templates(tmp_path)
    with pytest.raises(TemplateRefused, match="unsafe"):
        templates.render("entity-notice", "es", {})
    assert templates.render("entity-notice", "en", {"center": "CNSD", "headline": "h"}
                            ).subject == "CNSD custom: h"


def test_context_is_only_the_known_fields() -> None:
    with pytest.raises(InvalidInput, match="unknown template field 'settings'"):
        safe_context({"settings": object()})
    context = safe_context({"case_title": 42, "message": "two\nlines", "headline": "a\r\nb"})
    assert set(context) == set(FIELDS)
    assert (context["case_title"], context["message"], context["headline"]) == (
        "42", "two\nlines", "a b")
    assert all(isinstance(value, str) for value in context.values())
