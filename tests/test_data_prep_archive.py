"""Safe extraction, checksummed resumable download, and --root given as the official archive."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from verl_ext.data_prep.archive import safe_extract
from verl_ext.data_prep.cli import main
from verl_ext.data_prep.locate import locate_dataset
from verl_ext.data_prep.download import RemoteFile, download
from verl_ext.data_prep.errors import ChecksumError, DataPrepError, UnsafeArchiveError
from verl_ext.testing import layouts

from data_prep_scripts import load_spec

REPO = Path(__file__).resolve().parents[1]


def _tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        safe = tarfile.TarInfo("ok.txt")
        safe.size = 2
        tar.addfile(safe, io.BytesIO(b"ok"))
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    "member, reason",
    [
        (_member("../evil.txt"), "OutsideDestinationError"),
        (_member("a/../../evil.txt"), "OutsideDestinationError"),
        (_member("link", tarfile.SYMTYPE, "../../etc/passwd"), "LinkOutsideDestinationError"),
        (_member("link", tarfile.SYMTYPE, "/etc/passwd"), "AbsoluteLinkError"),
        (_member("hard", tarfile.LNKTYPE, "../outside.txt"), "LinkOutsideDestinationError"),
        (_member("dev", tarfile.CHRTYPE), "SpecialFileError"),
        (_member("fifo", tarfile.FIFOTYPE), "SpecialFileError"),
    ],
)
def test_hostile_tar_is_refused_and_nothing_is_written(tmp_path, member, reason):
    archive = _tar_with(tmp_path / "bad.tgz", member, b"x")
    with pytest.raises(UnsafeArchiveError, match=rf"bad\.tgz: member .* refused by tarfile's 'data' filter \({reason}"):
        safe_extract(archive, tmp_path / "dest")
    # The whole archive is checked first: not even the harmless member before the bad one is written.
    assert list((tmp_path / "dest").iterdir()) == []


def test_absolute_tar_member_lands_inside_the_destination(tmp_path):
    """tarfile's data filter strips the leading '/', as tar itself does: nothing is written outside."""
    outside = tmp_path / "abs" / "evil.txt"
    archive = _tar_with(tmp_path / "abs.tgz", _member(str(outside)), b"x")
    safe_extract(archive, tmp_path / "dest")
    assert not outside.exists()
    assert (tmp_path / "dest" / str(outside).lstrip("/")).read_bytes() == b"x"


def test_extracted_files_lose_unsafe_mode_bits(tmp_path):
    info = _member("tool.sh")
    info.mode = 0o6777  # setuid, setgid, world-writable
    safe_extract(_tar_with(tmp_path / "mode.tgz", info, b"#!/bin/sh\n"), tmp_path / "dest")
    assert (tmp_path / "dest" / "tool.sh").stat().st_mode & 0o7777 == 0o755


def test_links_that_stay_inside_are_extracted(tmp_path):
    archive = _tar_with(tmp_path / "ok.tgz", _member("sub/link", tarfile.SYMTYPE, "../ok.txt"))
    safe_extract(archive, tmp_path / "dest")
    assert (tmp_path / "dest" / "sub" / "link").read_text() == "ok"


def test_zip_traversal_and_symlinks_are_refused(tmp_path):
    traversal = tmp_path / "bad.zip"
    with zipfile.ZipFile(traversal, "w") as zf:
        zf.writestr("../evil.txt", "x")
    with pytest.raises(UnsafeArchiveError, match="points outside"):
        safe_extract(traversal, tmp_path / "dest")
    symlink = tmp_path / "link.zip"
    with zipfile.ZipFile(symlink, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        safe_extract(symlink, tmp_path / "dest")
    assert not (tmp_path / "evil.txt").exists()


class _RangeServer:
    """A real HTTP server on 127.0.0.1 that honours ``Range: bytes=N-`` (unless told not to) and counts requests.

    ``/moved`` answers 302 to the archive, as CaltechDATA does for CUB.
    """

    def __init__(self, payload: bytes, honour_range: bool = True):
        server = self
        self.payload = payload
        self.ranges: list[str | None] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                if self.path == "/moved":
                    self.send_response(302)
                    self.send_header("Location", "/archive.tgz")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path != "/archive.tgz":
                    self.send_error(404)
                    return
                requested = self.headers.get("Range") if honour_range else None
                server.ranges.append(self.headers.get("Range"))
                start = int(requested.split("=")[1].rstrip("-")) if requested else 0
                if start >= len(server.payload) and requested:
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = server.payload[start:]
                self.send_response(206 if requested else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.url = f"{self.base}/archive.tgz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


PAYLOAD = bytes(range(256)) * 4000
PAYLOAD_SHA = "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()


def test_download_resumes_a_partial_file_and_verifies_the_checksum(tmp_path):
    (tmp_path / "archive.tgz.part").write_bytes(PAYLOAD[:300_000])
    with _RangeServer(PAYLOAD) as server:
        path = download(RemoteFile(server.url, "archive.tgz", PAYLOAD_SHA), tmp_path)
        assert server.ranges == ["bytes=300000-"]
        assert path.read_bytes() == PAYLOAD and not (tmp_path / "archive.tgz.part").exists()
        download(RemoteFile(server.url, "archive.tgz", PAYLOAD_SHA), tmp_path)  # verified file: no request
        assert len(server.ranges) == 1


def test_download_follows_redirects(tmp_path):
    with _RangeServer(PAYLOAD) as server:
        assert download(RemoteFile(f"{server.base}/moved", "archive.tgz", PAYLOAD_SHA), tmp_path).read_bytes() == PAYLOAD


def test_server_that_ignores_the_range_restarts_the_file(tmp_path):
    (tmp_path / "archive.tgz.part").write_bytes(b"stale bytes from another file")
    with _RangeServer(PAYLOAD, honour_range=False) as server:
        assert download(RemoteFile(server.url, "archive.tgz", PAYLOAD_SHA), tmp_path).read_bytes() == PAYLOAD
        assert server.ranges == ["bytes=29-"]


def test_complete_partial_file_is_verified_without_a_body(tmp_path):
    (tmp_path / "archive.tgz.part").write_bytes(PAYLOAD)
    with _RangeServer(PAYLOAD) as server:  # answers 416: nothing left to send
        assert download(RemoteFile(server.url, "archive.tgz", PAYLOAD_SHA), tmp_path).read_bytes() == PAYLOAD


def test_http_error_status_is_a_clear_error(tmp_path):
    with _RangeServer(PAYLOAD) as server:
        with pytest.raises(DataPrepError, match=r"downloading .*/missing failed: HTTP 404 Not Found"):
            download(RemoteFile(f"{server.base}/missing", "archive.tgz"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_download_with_the_wrong_checksum_keeps_nothing(tmp_path):
    with _RangeServer(b"tampered archive") as server:
        with pytest.raises(ChecksumError, match="md5 is .* expected 0000"):
            download(RemoteFile(server.url, "archive.tgz", "md5:" + "0" * 32), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_download_failure_is_a_clear_error(tmp_path):
    with _RangeServer(b"") as server:
        url = server.url
    with pytest.raises(DataPrepError, match=rf"downloading {url} failed"):
        download(RemoteFile(url, "archive.tgz"), tmp_path, timeout_s=5)


def _packed_cub(tmp_path):
    mini = layouts.build_cub(tmp_path / "build")
    (tmp_path / "root").mkdir()
    archive = layouts.pack(tmp_path / "build", tmp_path / "root" / "CUB_200_2011.tgz", ["CUB_200_2011"])
    return mini, archive


def test_root_holding_only_the_archive_is_checked_extracted_and_converted(tmp_path):
    mini, archive = _packed_cub(tmp_path)
    spec = load_spec("cub")
    with pytest.raises(ChecksumError, match="not the official one"):  # the published md5 is checked
        locate_dataset(spec, archive, allow_download=False)
    assert not (tmp_path / "root" / "CUB_200_2011").exists()
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    mine = dataclasses.replace(spec, remote_files=(dataclasses.replace(spec.remote_files[0], checksum=f"md5:{md5}"),))
    assert main(mine, ["--root", str(archive), "--out", str(tmp_path / "out"), "--splits", "train", "test", "--no-progress"]) == 0
    rows = pq.read_table(tmp_path / "out" / "cub200" / "test.parquet").to_pylist()
    assert [r["images"][0]["bytes"] for r in rows] == [mini.image_path(rel).read_bytes() for rel, _ in sorted(mini.splits["test"])]


def test_script_runs_from_the_command_line(tmp_path):
    layouts.build_cub(tmp_path / "raw")
    command = [sys.executable, str(REPO / "data_prep" / "cub.py"), "--root", str(tmp_path / "raw"), "--out",
               str(tmp_path / "out"), "--splits", "test", "--subset", "2", "--seed", "7", "--no-progress", "--no-download"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "cub200/test_sub2_seed7.parquet" in done.stdout and "official" in done.stdout
    assert pq.ParquetFile(tmp_path / "out" / "cub200" / "test_sub2_seed7.parquet").metadata.num_rows == 2
    failed = subprocess.run([*command[:3], str(tmp_path / "nothing"), *command[4:]], capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2 and "error: CUB-200-2011 not found" in failed.stderr
