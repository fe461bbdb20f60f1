"""FileSource: paths and folders to RawReports, gzip opened transparently, streams closed."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from collectors.sources.files import CorruptGzip, FileSource, SourceUnavailable


def test_folder_is_walked_recursively_and_gzip_is_decompressed(shared_data: Path) -> None:
    seen: dict[str, bytes] = {}
    streams = []
    for report in FileSource().reports([shared_data / "zeek/wrccdc-2018"], entity_id="e-1"):
        seen[report.metadata["path"].split("wrccdc-2018/")[1]] = report.stream.read(10)
        streams.append(report.stream)
        assert report.entity_id == "e-1" and report.source == "file"
    assert len(seen) == 12
    assert seen["tsv/notice.log.gz"] == b"#separator"
    assert seen["json/notice.json.gz"] == b'{"_path":"'
    assert all(stream.closed for stream in streams)


def test_filename_drops_gz_and_stream_reads_lines(shared_data: Path) -> None:
    path = shared_data / "zeek/wrccdc-2018/tsv/ssh.log.gz"
    with FileSource().open_report(path, fmt="zeek") as report:
        assert report.filename == "ssh.log"
        assert report.format == "zeek"
        assert report.metadata["compressed"] is True
        lines = report.stream.readlines()
    assert report.stream.closed
    assert len(lines) == 8 + 22 + 1  # 8 header lines, 22 rows, #close
    with gzip.open(path, "rb") as raw:
        assert raw.readlines() == lines


def test_plain_file_and_hidden_entries(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b"{}\n")
    (tmp_path / ".hidden").write_bytes(b"x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "b.json").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.log").write_bytes(b"c")
    names = [r.filename for r in FileSource().reports([tmp_path])]
    assert names == ["a.json", "c.log"]


def test_missing_path_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(SourceUnavailable, match=r"nope\.json"):
        list(FileSource().reports([missing]))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_names_it(tmp_path: Path) -> None:
    locked = tmp_path / "locked.json"
    locked.write_bytes(b"{}")
    locked.chmod(0)
    with pytest.raises(SourceUnavailable, match=r"locked\.json"):
        list(FileSource().reports([locked]))


def test_open_report_on_a_folder_names_it(tmp_path: Path) -> None:
    with (
        pytest.raises(SourceUnavailable, match="not a readable file"),
        FileSource().open_report(tmp_path),
    ):
        pass


def test_broken_symlink_names_it(tmp_path: Path) -> None:
    link = tmp_path / "gone.log"
    link.symlink_to(tmp_path / "target-that-does-not-exist")
    with pytest.raises(SourceUnavailable, match=r"gone\.log"):
        list(FileSource().reports([link]))


def test_not_gzip_and_truncated_gzip_name_the_file(shared_data: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fake.log.gz"
    fake.write_bytes(b"#separator \\x09\n")
    with pytest.raises(CorruptGzip, match=r"fake\.log\.gz"):
        list(FileSource().reports([fake]))
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes((shared_data / "zeek/wrccdc-2018/tsv/dns.log.gz").read_bytes()[:50_000])
    with FileSource().open_report(cut) as report:
        assert report.stream.readline().startswith(b"#separator")
        with pytest.raises(CorruptGzip, match=r"cut\.log\.gz"):
            while report.stream.readline(4096):
                pass
