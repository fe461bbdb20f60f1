"""RemoteClient against the routes it documents.

These tests answer through httpx's MockTransport (a fake at the HTTP seam) to check only the
client's own behaviour: the exact request it makes, the token handling, and how problem+json
errors become pukara.core.errors. The same client against a real ``pukara serve`` on
loopback is tested in the other tests/tui/test_remote_*.py files.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from pukara.core.errors import (
    AuthenticationFailed,
    Conflict,
    ExternalServiceError,
    InvalidInput,
    NotFound,
    RateLimited,
)
from tui.client.base import AlertQuery
from tui.client.remote import RemoteClient

TOKEN = "pk_analyst_s3cret-token-value"


def client_answering(handler: httpx.MockTransport) -> RemoteClient:
    """A RemoteClient whose requests the handler answers."""
    return RemoteClient("https://pukara.example/", TOKEN, transport=handler)


def test_alert_page_request_and_answer() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [{"id": 7, "title": "x"}], "total": 10000,
                                         "total_capped": True})

    page = client_answering(httpx.MockTransport(answer)).alert_page(
        AlertQuery(text="severity:>=high \"ransom note\"", offset=100, limit=50))
    [request] = seen
    assert request.url.path == "/api/v1/analyst/alerts"
    assert dict(request.url.params) == {"q": 'severity:>=high "ransom note"',
                                        "sort": "-observed_at", "offset": "100", "limit": "50"}
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert (page.rows, page.total, page.offset, page.total_label()) == (
        [{"id": 7, "title": "x"}], 10000, 100, "10,000+")


def test_case_reference_stays_one_path_segment() -> None:
    paths: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"id": "c"})

    remote = client_answering(httpx.MockTransport(answer))
    remote.case("../../admin")
    remote.case("..")
    assert paths == ["/api/v1/analyst/cases/..%2F..%2Fadmin", "/api/v1/analyst/cases/%2E%2E"]


@pytest.mark.parametrize(("status", "error"), [
    (401, AuthenticationFailed), (404, NotFound), (409, Conflict), (422, InvalidInput),
    (500, ExternalServiceError)])
def test_problem_json_becomes_the_matching_error(status: int, error: type[Exception]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"title": "t", "detail": "case CASE-1 is closed"},
                              headers={"Content-Type": "application/problem+json"})

    with pytest.raises(error, match="case CASE-1 is closed"):
        client_answering(httpx.MockTransport(answer)).update_case("CASE-1", {"title": "x"})


def test_rate_limit_carries_retry_after() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"detail": "slow down"}, headers={"Retry-After": "7"})

    with pytest.raises(RateLimited) as caught:
        client_answering(httpx.MockTransport(answer)).intel_stats()
    assert caught.value.retry_after == 7


def test_token_never_in_repr_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    remote = client_answering(httpx.MockTransport(refuse))
    with caplog.at_level(logging.DEBUG), pytest.raises(ExternalServiceError) as caught:
        remote.search("ransom")
    assert TOKEN not in repr(remote)
    assert TOKEN not in str(caught.value)
    assert TOKEN not in caplog.text
    assert str(caught.value) == "analyst API at https://pukara.example/ unreachable: ConnectError"
