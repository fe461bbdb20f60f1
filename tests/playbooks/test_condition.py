"""The decision condition language: evaluation on case fields, located parse errors, and a
property test that no input text reaches anything but the parser (there is no ``eval``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playbooks.condition import Condition, ConditionError

CASE = {"severity": "high", "tlp": "amber", "classification": "malicious-code/ransomware",
        "tags": ["ransomware", "campaign"], "sectors": ["health"], "alerts": 3,
        "entities": ["minsa"], "status": "new", "title": "Ransomware at MINSA"}


@pytest.mark.parametrize(("text", "expected"), [
    ("case.severity >= high", True),
    ("case.severity > high", False),
    ("case.severity >= critical or 'campaign' in case.tags", True),
    ('case.severity >= high and "ransomware" in case.tags', True),
    ("not 'phishing' in case.tags", True),
    ("'phishing' not in case.tags", True),
    ("case.tlp >= amber and case.tlp < red", True),
    ("case.alerts >= 3 and case.alerts < 4", True),
    ("case.classification == 'malicious-code/ransomware'", True),
    ("case.classification in ['fraud/phishing', 'availability/ddos']", False),
    ("'health' in case.sectors and ('minsa' in case.entities)", True),
    ("'MINSA' in case.title", True),
    ("case.severity >= 'high'", True),
    ("case.severity < 'critical' and case.severity != 'bogus'", True),
    ("case.severity >= 'bogus'", False),
    ("true and not false", True),
])
def test_evaluate(text: str, expected: bool) -> None:
    assert Condition.parse(text).evaluate(CASE) is expected


@pytest.mark.parametrize(("text", "column", "reason"), [
    ("case.severity >=", 17, "expected a value, found the end"),
    ("case.severity >= hihg", 18, "unknown name 'hihg' (use case.<field>, a severity or TLP "
                                  "word, a quoted string or a number)"),
    ("__import__('os')", 1, "unknown name '__import__' (use case.<field>, a severity or TLP "
                            "word, a quoted string or a number)"),
    ("case.__class__", 1, "unknown case field '__class__'; known: alerts, classification, "
                          "entities, evidence, incidents, observable_types, pap, sectors, "
                          "severity, status, tags, title, tlp"),
    ("case.alerts ; 1", 13, "unexpected character ';'"),
    ("(case.alerts > 1", 17, "expected ')', found the end"),
    ("case.alerts > 1 1", 17, "unexpected '1'"),
    ("", 1, "the condition is empty"),
])
def test_parse_errors_are_located(text: str, column: int, reason: str) -> None:
    with pytest.raises(ConditionError) as caught:
        Condition.parse(text)
    assert (caught.value.column, caught.value.reason) == (column, reason)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("case.severity>=<!()[]'\"andornotin 0123_,;")),
               max_size=40))
def test_any_text_parses_or_fails_with_a_column(text: str) -> None:
    try:
        condition = Condition.parse(text)
    except ConditionError as exc:
        assert 1 <= exc.column <= len(text) + 1
        return
    assert isinstance(condition.evaluate(CASE), bool)
