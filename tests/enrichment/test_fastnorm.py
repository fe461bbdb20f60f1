"""The loader's fast normalisation agrees with the kernel's ``normalize`` (property test)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from enrichment.intel.fastnorm import fast_normalize
from enrichment.intel.misp_types import split_attribute
from pukara.core.errors import InvalidInput
from pukara.core.observables import ObservableType as T
from pukara.core.observables import normalize


def _either(kind: T, value: str, how: object) -> str:
    try:
        return how(kind, value)  # type: ignore[operator]
    except InvalidInput as exc:
        return f"error: {exc.message}"


LABEL = st.text(alphabet="abcXYZ019-_.é[]()", min_size=1, max_size=20)
NAMES = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
URLS = st.tuples(st.sampled_from(["http://", "HTTPS://", "hxxp://", "ftp://", "http://u:p@"]),
                 NAMES, st.sampled_from(["", ":80", ":443", ":8080", ":99999"]),
                 st.text(alphabet="/?#=&a b[.]%", max_size=12)).map("".join)


@settings(max_examples=400, deadline=None)
@given(NAMES, st.sampled_from([T.DOMAIN, T.HOSTNAME]))
def test_names_agree(value: str, kind: T) -> None:
    assert _either(kind, value, fast_normalize) == _either(kind, value, normalize)


@settings(max_examples=400, deadline=None)
@given(URLS)
def test_urls_agree(value: str) -> None:
    assert _either(T.URL, value, fast_normalize) == _either(T.URL, value, normalize)


def test_every_real_misp_value_agrees(shared_data: Path) -> None:
    checked = 0
    for path in sorted((shared_data / "misp").rglob("*.json")):
        if "malformed" in path.parts or path.name in ("manifest.json",):
            continue
        text = path.read_text()
        for misp_type, value in _attributes(json.loads(text)):
            for kind, raw in split_attribute(misp_type, value) or ():
                if kind in (T.DOMAIN, T.HOSTNAME, T.URL):
                    assert _either(kind, raw, fast_normalize) == _either(kind, raw, normalize)
                    checked += 1
    assert checked == 489


def _attributes(node: object) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        if isinstance(node.get("type"), str) and isinstance(node.get("value"), str):
            found.append((node["type"], node["value"]))
        for child in node.values():
            found.extend(_attributes(child))
    elif isinstance(node, list):
        for child in node:
            found.extend(_attributes(child))
    return found


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([T.MD5, T.SHA1, T.SHA256, T.SHA512]),
       st.text(alphabet="0123456789abcdefABCDEFg \t", min_size=30, max_size=130))
def test_hashes_agree(kind: T, value: str) -> None:
    assert _either(kind, value, fast_normalize) == _either(kind, value, normalize)
