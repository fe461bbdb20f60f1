"""The search syntax: fields, operators, phrases, negation, times, refusals, and Lucene
syntax kept as plain text (SECURITY B10)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cases.search.query import FIELDS, Filter, Text, allowed_levels, parse
from pukara.core.errors import InvalidInput
from pukara.core.taxonomy import TLP, Severity

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_the_issue_example() -> None:
    query = parse('entity:minsa severity:>=high "ransom"', now=NOW)
    assert query.filters == (Filter("entity", "minsa"), Filter("severity", "high", ">="))
    assert query.text == (Text("ransom", phrase=True),)


def test_every_field_and_negation() -> None:
    query = parse('status:new tlp:AMBER+STRICT class:malicious-code/* source:Suricata '
                  'observable:hxxp://evil[.]example/x case:CASE-2026-000001 '
                  '-status:dismissed -"port scan" -icmp nmap', now=NOW)
    assert query.filters == (
        Filter("status", "new"), Filter("tlp", "amber+strict"),
        Filter("class", "malicious-code/*"), Filter("source", "suricata"),
        Filter("observable", "http://evil.example/x"), Filter("case", "CASE-2026-000001"),
        Filter("status", "dismissed", negate=True))
    assert query.text == (Text("port scan", phrase=True, negate=True),
                          Text("icmp", negate=True), Text("nmap"))


def test_times_absolute_and_relative() -> None:
    query = parse("since:24h until:2026-03-01", now=NOW)
    assert query.since == datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    assert query.until == datetime(2026, 3, 1, tzinfo=UTC)
    assert query.filters == ()
    assert parse("since:7d since:2026-02-27T00:00:00Z", now=NOW).since == datetime(
        2026, 2, 27, tzinfo=UTC)


@pytest.mark.parametrize("text", ["entity_id:*", "_id:42", "OR", "entity:minsa OR entity:bcrp",
                                  "*:*", "(a OR b)", "title:x^2"])
def test_lucene_syntax_is_text(text: str) -> None:
    """None of these become a filter that is not written as one of our fields."""
    if text.startswith("title:"):
        with pytest.raises(InvalidInput):
            parse(text, now=NOW)
        return
    query = parse(text, now=NOW)
    assert all(f.field == "entity" for f in query.filters)
    assert "OR" not in {f.value for f in query.filters}


def test_lucene_words_kept_verbatim() -> None:
    assert parse("entity_id:* OR _id:42", now=NOW).text == (
        Text("entity_id:*"), Text("OR"), Text("_id:42"))


def test_terms_without_words_are_dropped() -> None:
    assert parse('* () "" -* nmap', now=NOW).text == (Text("nmap"),)


def test_unknown_field_names_the_allowed_ones() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse("entity:minsa title:ransom", now=NOW)
    assert caught.value.message == (
        "query term 2: unknown field 'title' (fields: entity, severity, status, tlp, class, "
        "source, observable, case, since, until)")


@pytest.mark.parametrize(("text", "message"), [
    ("severity:>=urgent", "query term 1: severity: unknown severity 'urgent'"),
    ("tlp:purple", "query term 1: tlp: unknown TLP 'purple'"),
    ("since:yesterday", "query term 1: since: 'yesterday' is not a date"),
    ('"open quote', "the query has an unclosed quote"),
    ("-since:24h", "query term 1: since: cannot be negated"),
    ("entity:", "query term 1: entity: needs a value"),
])
def test_bad_values_are_located(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(text, now=NOW)
    assert caught.value.message.startswith(message)


def test_ordered_scales() -> None:
    assert allowed_levels(Filter("severity", "high", ">="), Severity) == ["high", "critical"]
    assert allowed_levels(Filter("tlp", "amber", "<"), TLP) == ["clear", "green"]
    assert allowed_levels(Filter("severity", "low"), Severity) == ["low"]


@given(st.text(max_size=200))
def test_any_text_parses_or_is_refused_cleanly(text: str) -> None:
    """Property: arbitrary input either parses or raises InvalidInput, and every filter it
    yields names one of our fields."""
    try:
        query = parse(text, now=NOW)
    except InvalidInput:
        return
    assert {f.field for f in query.filters} <= set(FIELDS)


@pytest.mark.parametrize("text", ["nmap\x00scan", "a\x1b[31m", "x\x7f"])
def test_control_characters_are_refused_before_the_index(text: str) -> None:
    with pytest.raises(InvalidInput, match="control character"):
        parse(text)
