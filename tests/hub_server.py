"""The `hub_server` fixture (a pytest plugin loaded by tests/conftest.py): a local Hub-protocol server, olah 0.5.4
in offline mode, serving git repositories from a mirrors folder (see ../shared/reference/local-hub.md). It runs from its own virtual environment (`.venv-hub`, made by
`make test`; its dependencies conflict with the library's), on 127.0.0.1 at the port tests/conftest.py chose before
huggingface_hub was imported.

Set UNITOK_HUB_SERVER_PYTHON to another interpreter with olah installed. Without one, the tests that need the
server are skipped, except under `make test` / CI (UNITOK_REQUIRE_HUB_SERVER=1), where that is an error.
"""

import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OLAH_CONFIG = """
[basic]
host = "127.0.0.1"
port = {port}
mirror-netloc = "127.0.0.1:{port}"
mirror-lfs-netloc = "127.0.0.1:{port}"
repos-path = "{root}/cache"
mirrors-path = ["{root}/mirrors"]
hf-scheme = "http"
hf-netloc = "127.0.0.1:9"
hf-lfs-netloc = "127.0.0.1:9"

[accessibility]
offline = true
"""


@dataclass
class HubServer:
    endpoint: str
    mirrors: Path

    def repo_path(self, repo_id: str) -> Path:
        """Where the server reads the git repository of model `repo_id`."""
        return self.mirrors / "models" / repo_id


def _server_python() -> str | None:
    candidate = os.environ.get("UNITOK_HUB_SERVER_PYTHON") or str(ROOT / ".venv-hub" / "bin" / "python")
    if not Path(candidate).is_file():
        return None
    probe = subprocess.run([candidate, "-c", "import olah.server"], capture_output=True)
    return candidate if probe.returncode == 0 else None


def _wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"olah exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:  # any HTTP answer means it is serving
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"olah did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory):
    python = _server_python()
    if python is None:
        message = "no olah server environment (.venv-hub); run `make test` or set UNITOK_HUB_SERVER_PYTHON"
        if os.environ.get("UNITOK_REQUIRE_HUB_SERVER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    endpoint = os.environ["HF_ENDPOINT"]
    port = int(endpoint.rsplit(":", 1)[1])
    root = tmp_path_factory.mktemp("olah")
    (root / "mirrors" / "models").mkdir(parents=True)
    (root / "olah.toml").write_text(OLAH_CONFIG.format(port=port, root=root))
    log = root / "olah.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([python, "-m", "olah.server", "-c", str(root / "olah.toml"),
                                    "--log-path", str(root / "logs")], cwd=root, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(f"{endpoint}/api/models/_/_/revision/main", process, log)
        yield HubServer(endpoint, root / "mirrors")
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
