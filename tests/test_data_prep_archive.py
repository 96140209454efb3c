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
from verl_ext.data_prep.cli import locate_dataset, main
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
        (_member("../evil.txt"), "points outside"),
        (_member("a/../../evil.txt"), "points outside"),
        (_member("/tmp/evil.txt"), "absolute path"),
        (_member("link", tarfile.SYMTYPE, "../../etc/passwd"), "points outside"),
        (_member("link", tarfile.SYMTYPE, "/etc/passwd"), "is absolute"),
        (_member("hard", tarfile.LNKTYPE, "../outside.txt"), "points outside"),
        (_member("dev", tarfile.CHRTYPE), "device or FIFO"),
    ],
)
def test_hostile_tar_is_refused_and_nothing_is_written(tmp_path, member, reason):
    archive = _tar_with(tmp_path / "bad.tgz", member, b"x")
    with pytest.raises(UnsafeArchiveError, match=reason):
        safe_extract(archive, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


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
    """A real HTTP server on 127.0.0.1 that honours ``Range: bytes=N-`` and counts requests."""

    def __init__(self, payload: bytes):
        server = self
        self.payload = payload
        self.ranges: list[str | None] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                requested = self.headers.get("Range")
                server.ranges.append(requested)
                start = int(requested.split("=")[1].rstrip("-")) if requested else 0
                body = server.payload[start:]
                self.send_response(206 if requested else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/archive.tgz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_download_resumes_a_partial_file_and_verifies_the_checksum(tmp_path):
    payload = bytes(range(256)) * 4000
    checksum = "sha256:" + hashlib.sha256(payload).hexdigest()
    (tmp_path / "archive.tgz.part").write_bytes(payload[:300_000])
    with _RangeServer(payload) as server:
        path = download(RemoteFile(server.url, "archive.tgz", checksum), tmp_path)
        assert server.ranges == ["bytes=300000-"]
        assert path.read_bytes() == payload and not (tmp_path / "archive.tgz.part").exists()
        download(RemoteFile(server.url, "archive.tgz", checksum), tmp_path)  # verified file: no request
        assert len(server.ranges) == 1


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
    assert main(mine, ["--root", str(archive), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    rows = pq.read_table(tmp_path / "out" / "cub200" / "test.parquet").to_pylist()
    assert [r["images"][0]["bytes"] for r in rows] == [mini.image_path(rel).read_bytes() for rel, _ in sorted(mini.splits["test"])]


def test_script_runs_from_the_command_line(tmp_path):
    layouts.build_cub(tmp_path / "raw")
    command = [sys.executable, str(REPO / "data_prep" / "cub.py"), "--root", str(tmp_path / "raw"), "--out",
               str(tmp_path / "out"), "--splits", "test", "--subset", "2", "--seed", "7", "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "cub200/test_sub2_seed7.parquet" in done.stdout and "official" in done.stdout
    assert pq.ParquetFile(tmp_path / "out" / "cub200" / "test_sub2_seed7.parquet").metadata.num_rows == 2
    failed = subprocess.run([*command[:3], str(tmp_path / "nothing"), *command[4:]], capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2 and "error: CUB-200-2011 not found" in failed.stderr
