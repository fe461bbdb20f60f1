"""Shared parser helpers: timestamps, build_alert's guard rails, cached observables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from collectors.parsers._common import build_alert, class_of_type, make_observable, parse_time
from pukara.core.observables import ObservableType
from pukara.core.schema import Alert, Classification


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-06-12T03:31:43.763684-0400", datetime(2026, 6, 12, 7, 31, 43, 763684, tzinfo=UTC)),
        ("2019-04-01 03:13:20Z", datetime(2019, 4, 1, 3, 13, 20, tzinfo=UTC)),
        ("2016-01-01 11:56:00", datetime(2016, 1, 1, 11, 56, tzinfo=UTC)),
        (1441008970, datetime(2015, 8, 31, 8, 16, 10, tzinfo=UTC)),
        ("1441008970", datetime(2015, 8, 31, 8, 16, 10, tzinfo=UTC)),
        (1521911720.5, datetime(2018, 3, 24, 17, 15, 20, 500000, tzinfo=UTC)),
        (None, None),
        ("", None),
    ],
)
def test_parse_time(value: object, expected: datetime | None) -> None:
    assert parse_time(value) == expected


@pytest.mark.parametrize("value", ["yesterday", True, [1], "2024-13-01T00:00:00Z"])
def test_parse_time_refuses(value: object) -> None:
    with pytest.raises(ValueError):
        parse_time(value)


def test_class_of_type() -> None:
    assert class_of_type("scanner") == "information-gathering"
    assert class_of_type("Phishing") == "fraud"
    assert class_of_type("ransomware") == "malicious-code"  # legacy eCSIRT name
    assert class_of_type("no-such-type") is None


def test_make_observable_is_cached_and_refuses_quietly() -> None:
    first = make_observable(ObservableType.DOMAIN, "WWW.Example.COM.", "query")
    assert first is not None and first.value == "www.example.com"
    assert make_observable(ObservableType.DOMAIN, "WWW.Example.COM.", "query") is first
    assert make_observable(ObservableType.IPV4, "300.1.1.1") is None
    assert (
        make_observable(ObservableType.URL, "hxxp://evil[.]example/a").value
        == "http://evil.example/a"
    )


def test_build_alert_gives_each_alert_its_own_classification() -> None:
    shared = Classification(taxonomy="other", type="undetermined")
    a = build_alert(source="s", title="t", classification=shared)
    b = build_alert(source="s", title="t", classification=shared)
    a.classification.type = "other"
    assert b.classification.type == "undetermined" and shared.type == "undetermined"
    assert Alert.model_validate(b.model_dump()) == b


def test_build_alert_falls_back_to_validation() -> None:
    with pytest.raises(ValidationError):
        build_alert(source="s", title="x" * 600, classification=Classification.parse("other/other"))
    with pytest.raises(ValidationError):
        build_alert(source="s", title="t", classification="other/other", severity="urgent")
    naive = build_alert(source="s", title="t", observed_at=datetime(2024, 1, 1, 12))
    assert naive.observed_at == datetime(2024, 1, 1, 12, tzinfo=UTC)
    lima = timezone(timedelta(hours=-5))
    moved = build_alert(
        source="s",
        title="t",
        classification=Classification.parse("other/other"),
        observed_at=datetime(2024, 1, 1, 7, tzinfo=lima),
    )
    assert moved.observed_at == datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert moved.observed_at.tzinfo is UTC
