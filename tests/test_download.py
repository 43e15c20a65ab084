import gzip
import socket
from pathlib import Path

import pytest

from stages import download
from stages.common.errors import PipelineError
from tests.bounded import run_stage
from tests.conftest import Reply
from tests.tiny_data import GZ_NAMES, files_spec, idx_bytes, tiny_arrays, write_mirror

RAW = idx_bytes(tiny_arrays())
FILES = files_spec(RAW)


def serve_all(server, prefix: str, transform=gzip.compress, **reply) -> str:
    """Serve every file under `prefix`, each body made by `transform`; return the mirror URL."""
    for role, data in RAW.items():
        server.routes[f"{prefix}/{GZ_NAMES[role]}"] = Reply(body=transform(data), **reply)
    return f"{server.url}{prefix}/"


def slow_first_file(server, prefix: str) -> str:
    """A mirror whose first file comes after 3 s, past the 1 s timeout (one is enough: each costs a second)."""
    url = serve_all(server, prefix)
    server.routes[f"{prefix}/{GZ_NAMES['train_images']}"].delay_s = 3
    return url


def refused_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def run(mirrors: list[str], out: Path, timeout_s: float = 2.0) -> None:
    download.main(mirrors, FILES, out, timeout_s)


def assert_downloaded(out: Path) -> None:
    assert sorted(p.name for p in out.iterdir()) == sorted(name.removesuffix(".gz") for name in GZ_NAMES.values())
    for role, data in RAW.items():
        assert (out / GZ_NAMES[role].removesuffix(".gz")).read_bytes() == data


def test_downloads_verifies_and_stores_decompressed(mirror_server, tmp_path):
    run([serve_all(mirror_server, "/good")], tmp_path / "raw")
    assert_downloaded(tmp_path / "raw")


def test_file_mirror_with_recompressed_files_verifies(tmp_path):
    # Debian's package recompresses the files: only the decompressed checksum is stable.
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for role, data in RAW.items():
        (mirror / GZ_NAMES[role]).write_bytes(gzip.compress(data, compresslevel=1, mtime=12345))
    run([mirror.as_uri() + "/"], tmp_path / "raw")
    assert_downloaded(tmp_path / "raw")


@pytest.mark.parametrize(
    "bad_mirror",
    [
        pytest.param(lambda s: f"{s.url}/missing/", id="404"),
        pytest.param(lambda s: refused_url(), id="connection-refused"),
        pytest.param(lambda s: slow_first_file(s, "/slow"), id="timeout"),
        pytest.param(lambda s: serve_all(s, "/html", transform=lambda d: b"<html>maintenance</html>",
                                          content_type="text/html"), id="html-with-200"),
        pytest.param(lambda s: serve_all(s, "/plain", transform=lambda d: d), id="not-gzip"),
        pytest.param(lambda s: serve_all(s, "/cut", transform=lambda d: gzip.compress(d)[:-20]), id="truncated-gzip"),
        pytest.param(lambda s: serve_all(s, "/short", declared_length=10**6), id="short-body"),
        pytest.param(lambda s: serve_all(s, "/other", transform=lambda d: gzip.compress(d + b"x")),
                     id="checksum-mismatch"),
    ],
)
def test_falls_back_to_next_mirror(mirror_server, tmp_path, bad_mirror):
    good = serve_all(mirror_server, "/good")
    run([bad_mirror(mirror_server), good], tmp_path / "raw", timeout_s=1.0)
    assert_downloaded(tmp_path / "raw")


def test_tries_mirrors_in_order_and_stops_at_first_good(mirror_server, tmp_path):
    first, second = serve_all(mirror_server, "/first"), serve_all(mirror_server, "/second")
    run([f"{mirror_server.url}/missing/", first, second], tmp_path / "raw")
    name = GZ_NAMES["train_images"]
    assert mirror_server.requests.index(f"/missing/{name}") < mirror_server.requests.index(f"/first/{name}")
    assert not any(path.startswith("/second/") for path in mirror_server.requests)


def test_every_mirror_failing_names_each_mirror_and_why(mirror_server, tmp_path):
    bad_sum = serve_all(mirror_server, "/other", transform=lambda d: gzip.compress(d + b"x"))
    html = serve_all(mirror_server, "/html", transform=lambda d: b"<html></html>", content_type="text/html")
    missing = f"{mirror_server.url}/missing/"
    with pytest.raises(PipelineError) as error:
        run([missing, html, bad_sum], tmp_path / "raw")
    message = str(error.value)
    assert "\n" not in message
    assert f"{missing}{GZ_NAMES['train_images']} (HTTP 404" in message
    assert f"{html}{GZ_NAMES['train_images']} (not a valid gzip file" in message
    assert f"{bad_sum}{GZ_NAMES['train_images']} (checksum mismatch" in message
    assert "data.mirrors in params.yaml" in message
    assert not (tmp_path / "raw").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary folder left behind


def test_failure_keeps_an_earlier_download(mirror_server, tmp_path):
    out = tmp_path / "raw"
    run([serve_all(mirror_server, "/good")], out)
    with pytest.raises(PipelineError):
        run([f"{mirror_server.url}/missing/"], out)
    assert_downloaded(out)


def test_partial_mirror_failure_mid_way_leaves_nothing(mirror_server, tmp_path):
    url = serve_all(mirror_server, "/partial")
    del mirror_server.routes[f"/partial/{GZ_NAMES['test_labels']}"]  # the last file is missing
    with pytest.raises(PipelineError, match="t10k-labels"):
        run([url], tmp_path / "raw")
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_one_line_error_and_exit_status(tmp_path, monkeypatch, capsys):
    import yaml

    params = yaml.safe_load(Path("params.yaml").read_text())
    params["data"]["mirrors"] = [refused_url()]
    params["data"]["files"] = FILES
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    monkeypatch.setattr("sys.argv", ["download", "--params", str(params_file), "--out", str(tmp_path / "raw")])
    with pytest.raises(SystemExit) as exit_info:
        download.cli.run(download._cli)
    assert exit_info.value.code == 1
    error_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "no mirror gave a valid" in error_lines[0]


def test_tiny_mirror_helper_matches_spec(tmp_path):
    # The e2e tests rely on write_mirror; check it produces what download verifies.
    run([write_mirror(tmp_path / "m", RAW).as_uri() + "/"], tmp_path / "raw")
    assert_downloaded(tmp_path / "raw")


@pytest.mark.parametrize("reply", [
    pytest.param(lambda data: Reply(body=gzip.compress(b"\0" * (download.MAX_BYTES + 1))), id="gzip-bomb"),
    pytest.param(lambda data: Reply(body=gzip.compress(data), declared_length=download.MAX_BYTES + 1),
                 id="declared-too-large"),
])
def test_oversize_file_moves_on_to_the_next_mirror(mirror_server, tmp_path, capsys, reply):
    # A bounded read: neither a body nor what it unpacks to may exceed MAX_BYTES. The first file is
    # enough to show it (each refusal unpacks 128 MiB); the others are served as they should be.
    for role, data in RAW.items():
        mirror_server.routes[f"/big/{GZ_NAMES[role]}"] = reply(data) if role == "train_images" else \
            Reply(body=gzip.compress(data))
    run([f"{mirror_server.url}/big/", serve_all(mirror_server, "/good")], tmp_path / "raw")
    assert_downloaded(tmp_path / "raw")
    assert "more than any Fashion-MNIST file has" in capsys.readouterr().err


def test_endless_body_is_cut_at_the_limit(mirror_server, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(download, "MAX_BYTES", 1000)
    serve_all(mirror_server, "/long", transform=lambda data: gzip.compress(data) + b"\0" * 2000, declared_length=0)
    with pytest.raises(PipelineError):
        run([f"{mirror_server.url}/long/"], tmp_path / "raw")
    assert "it goes on past 1000 bytes" in capsys.readouterr().err
    assert not (tmp_path / "raw").exists()


def test_url_that_cannot_be_sent_is_a_failed_mirror(mirror_server, tmp_path, capsys):
    run([f"{mirror_server.url}/a b/", serve_all(mirror_server, "/good")], tmp_path / "raw")
    assert_downloaded(tmp_path / "raw")
    assert "InvalidURL" in capsys.readouterr().err


def trickling(server, prefix: str) -> str:
    """A mirror that answers at once and then sends a byte every 0.2 s of a 30 MB body: each read
    succeeds within any timeout, so only a bound on the whole transfer ends it."""
    for role in RAW:
        server.routes[f"{prefix}/{GZ_NAMES[role]}"] = Reply(body=b"\x1f" * 500, trickle_s=0.2,
                                                            declared_length=30_000_000)
    return f"{server.url}{prefix}/"


def test_stage_falls_back_from_a_trickling_mirror_in_bounded_time(mirror_server, tmp_path):
    # The probe's case, through the real command: the slow mirror first, a file:// mirror second.
    # Before, it was still reading the first file when killed at 30 s (its 500 bytes take 100 s).
    import yaml

    params = yaml.safe_load(Path("params.yaml").read_text())
    params["data"].update(mirrors=[trickling(mirror_server, "/trickle"),
                                   write_mirror(tmp_path / "m", RAW).as_uri() + "/"],
                          files=FILES, timeout_s=1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_stage("stages.download", "--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "raw"),
                       timeout=30)
    assert result.returncode == 0 and result.seconds < 15, result
    assert_downloaded(tmp_path / "raw")
    assert "too slow:" in result.stderr and "verified from file:" in result.stderr
