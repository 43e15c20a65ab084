import gzip
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.processes import run_in_process, run_process

# Tests run on two workers (pytest-xdist, pytest.ini). Each e2e module goes whole to one
# worker, so that its module-scoped project is built once; the modules that share a server
# of which a machine runs one go to the same worker. (xdist's own `xdist_group` mark does
# the latter no more under pytest 9: pytest-dev/pytest-xdist#1386.)
ONE_WORKER = {"tests/e2e/test_slurm": "the SLURM test cluster", "tests/e2e/test_container": "the docker daemon"}


_stops = pytest.StashKey[list]()


def stop_when_the_session_ends(config: pytest.Config, stop) -> None:
    """Call `stop` when this process's session ends, whatever happened (failed tests, Ctrl-C).
    In pytest_sessionfinish, not in config's cleanup: an xdist worker reports itself finished
    after that hook, and the controller then gives it 10 s before ending it, which cut a
    cluster's stop short and left its /etc/slurm/slurm.conf behind for the next run."""
    config.stash.setdefault(_stops, []).append(stop)


def pytest_sessionfinish(session: pytest.Session) -> None:
    for stop in reversed(session.config.stash.get(_stops, [])):
        stop()


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndServers(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::")[0]
            shared = [server for prefix, server in ONE_WORKER.items() if path.startswith(prefix)]
            if shared:
                return shared[0]
            return path if path.startswith("tests/e2e/") else nodeid  # a unit test: any worker

        e2e_first = False

        def _assign_work_unit(self, node) -> None:
            # xdist hands out scopes with the most tests first, so a slow e2e module of one or two
            # tests came among the hundreds of one-test unit scopes, often last, with the other
            # worker idle. The e2e scopes go first (in xdist's order); unit tests fill in at the end.
            if not self.e2e_first:
                for scope in [scope for scope in self.workqueue if is_unit_scope(scope)]:
                    self.workqueue.move_to_end(scope)
                self.e2e_first = True
            super()._assign_work_unit(node)

    return ModulesAndServers(config, log)


def is_unit_scope(scope: str) -> bool:
    return "::" in scope and not scope.startswith("tests/e2e/")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e/ is in the e2e tier, whether or not its file says so."""
    e2e = Path(__file__).parent / "e2e"
    for item in items:
        if e2e in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    delay_s: float = 0.0
    content_type: str = "application/gzip"
    declared_length: int | None = None  # larger than the body: a cut-off transfer; 0: no Content-Length
    trickle_s: float = 0.0  # send the body a byte at a time, this long apart: a mirror too slow to wait for


class MirrorServer:
    """A real HTTP server on 127.0.0.1; `routes[path] = Reply(...)`, anything else is a 404."""

    def __init__(self) -> None:
        self.routes: dict[str, Reply] = {}
        self.requests: list[str] = []
        routes, requests = self.routes, self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                reply = routes.get(self.path, Reply(status=404, body=b"not found", content_type="text/plain"))
                time.sleep(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    if reply.declared_length != 0:
                        self.send_header("Content-Length", str(reply.declared_length or len(reply.body)))
                    self.end_headers()
                    if reply.trickle_s:
                        for byte in range(len(reply.body)):
                            self.wfile.write(reply.body[byte:byte + 1])
                            self.wfile.flush()
                            time.sleep(reply.trickle_s)
                    else:
                        self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # serve_forever looks for shutdown() every poll_interval: its default 0.5 s would be each test's teardown.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# The e2e tests' tiny dataset is served all session long by one mirror in the process that starts the
# workers (xdist's controller), so that a project built by one worker, whose params name the mirror,
# still downloads in the other worker's tests (tests/e2e/conftest.py's `reproduced`).
TINY_MIRROR_URL = "TESTS_TINY_MIRROR_URL"
TINY_SIZES = {"n_train": 200, "n_test": 50}
_tiny_mirror = pytest.StashKey[MirrorServer]()


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or TINY_MIRROR_URL in os.environ:
        return  # a worker, which inherited the controller's environment, or a pytest run inside one
    from tests.tiny_data import GZ_NAMES, idx_bytes, tiny_arrays

    server = config.stash[_tiny_mirror] = MirrorServer()
    for role, data in idx_bytes(tiny_arrays(**TINY_SIZES)).items():
        server.routes[f"/fmnist/{GZ_NAMES[role]}"] = Reply(body=gzip.compress(data))
    os.environ[TINY_MIRROR_URL] = f"{server.url}/fmnist/"


def pytest_unconfigure(config: pytest.Config) -> None:
    if _tiny_mirror in config.stash:
        config.stash[_tiny_mirror].close()
        del os.environ[TINY_MIRROR_URL]


@pytest.fixture
def mirror_server() -> Iterator[MirrorServer]:
    server = MirrorServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def tiny_processed(tmp_path_factory) -> Path:
    """data/processed for tiny data, made by the real normalize and split stages."""
    from stages import normalize, split
    from stages.common.idx import raw_name
    from tests.tiny_data import GZ_NAMES, files_spec, idx_bytes, tiny_arrays

    root = tmp_path_factory.mktemp("tiny")
    raw = idx_bytes(tiny_arrays(**TINY_SIZES))
    (root / "raw").mkdir()
    for role, data in raw.items():
        (root / "raw" / raw_name(GZ_NAMES[role])).write_bytes(data)
    normalize.main(root / "raw", files_spec(raw), root / "interim")
    split.main(root / "interim", root / "processed", test_size=0.2, validation_size=0.1, seed=0)
    return root / "processed"


@pytest.fixture(scope="session")
def tiny_model(tiny_processed, tmp_path_factory) -> Path:
    """conv1 at tiny size (tests.tiny_data.TINY_MODEL), trained by the train stage for one epoch on
    `tiny_processed`. Made once for the session and shared: read it, copy it to change it."""
    import yaml

    from stages import train
    from tests.tiny_data import TINY_MODEL

    out = tmp_path_factory.mktemp("tiny_model")
    params = yaml.safe_load(Path("params.yaml").read_text())
    config = replace(train.TrainConfig.from_params(params), epochs=1, batch_size=32)
    train.main("conv1", TINY_MODEL, tiny_processed, out / "conv1.keras", out / "live", out / "timing.json", config)
    return out / "conv1.keras"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`run_module` runs in this process; a test marked `also_as_process` runs again in a new one, in the e2e tier."""
    if "run_module" in metafunc.fixturenames:
        ways = ["in-process"]
        if metafunc.definition.get_closest_marker("also_as_process"):
            ways.append(pytest.param("process", marks=pytest.mark.e2e))
        metafunc.parametrize("run_module", ways, indirect=True)


@pytest.fixture
def run_module(request):
    """Run `python -m <module> <args>` (or a script, `<path>.py`) and return its CompletedProcess.

    In this process (tests/processes.py), which gives the same exit status and output as a new
    process but skips the interpreter's start-up and TensorFlow's import. What only a new process
    shows (TensorFlow's start-up notes kept off stderr, the status the interpreter itself gives,
    the module's own import) is the same for every case, so one test per command line is marked
    `also_as_process` and runs both ways."""
    return run_in_process if request.param == "in-process" else run_process


@pytest.fixture(scope="session", autouse=True)
def pinned_threads() -> None:
    """A stage run in this process (`run_module`) pins TensorFlow's threads as it starts, and
    TensorFlow takes the count once per process: set params.yaml's before any test's first op."""
    import yaml

    from stages.common.tensorflow import pin_threads

    pin_threads(yaml.safe_load(Path("params.yaml").read_text())["threads"])
