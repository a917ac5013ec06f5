import atexit
import os
import shutil
import socket
import tempfile


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Tests never reach the network and stay quiet. Every Hub call goes to a local Hub-protocol server (olah, started
# by the `hub_server` fixture of tests/hub_server.py on this port) and into a private cache. huggingface_hub reads these
# variables once, at import, so they are set here, before anything imports it.
HUB_PORT = _free_port()
os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{HUB_PORT}"
os.environ["HF_HUB_CACHE"] = tempfile.mkdtemp(prefix="unitok-test-hub-cache-")
atexit.register(shutil.rmtree, os.environ["HF_HUB_CACHE"], True)
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.pop("HF_HUB_OFFLINE", None)
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # two xdist workers on two cores

pytest_plugins = ["tests.hub_server"]  # the `hub_server` fixture (olah)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
