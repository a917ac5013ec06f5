"""Transports without a network: the Hub transport's calls (through a recording stand-in for `HfApi`), the git
transport's repository layout, and the token never reaching the output."""

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from huggingface_hub.errors import HfHubHTTPError, RevisionNotFoundError

import unitok
from unitok.hub_upload import GitTransport, HubTransport, PublishError, push, stage
from unitok.hub_upload.transports import HUB_LFS_PATTERNS, stored_with_lfs


def http_response(status: int):
    return SimpleNamespace(status_code=status, headers={}, request=None)


class RecordingApi:
    """The `HfApi` methods HubTransport uses, answering from an in-memory repo {revision: {path: (lfs, blob)}}."""

    endpoint = "https://hub.example"

    def __init__(self, branches=None, fail_with=None):
        self.branches = branches if branches is not None else {"main": {".gitattributes": (None, "g" * 40)}}
        self.calls, self.fail_with = [], fail_with

    def _record(self, name, **kwargs):
        self.calls.append((name, kwargs))
        if self.fail_with is not None:
            raise self.fail_with

    def create_repo(self, repo_id, **kwargs):
        self._record("create_repo", repo_id=repo_id, **kwargs)

    def repo_info(self, repo_id, revision):
        if revision not in self.branches:
            raise RevisionNotFoundError("no such revision", response=http_response(404))
        return SimpleNamespace(sha=f"{revision}-head")

    def list_repo_tree(self, repo_id, revision, recursive):
        files = self.branches[revision.removesuffix("-head")]
        return [SimpleNamespace(path=p, blob_id=blob, lfs=SimpleNamespace(sha256=lfs) if lfs else None)
                for p, (lfs, blob) in files.items()]

    def create_branch(self, repo_id, branch, exist_ok):
        self._record("create_branch", repo_id=repo_id, branch=branch)
        self.branches[branch] = dict(self.branches["main"])

    def upload_folder(self, **kwargs):
        self._record("upload_folder", **kwargs)
        return SimpleNamespace(oid="c" * 40, commit_url="https://hub.example/commit", pr_url=None)


def remote_copy(staged):
    """A remote listing holding exactly the staged files (LFS for the weights, as the Hub stores them)."""
    return {f.path: (f.sha256, "x" * 40) if f.path.endswith(".safetensors") else (None, f.git_sha1)
            for f in staged.files} | {".gitattributes": (None, "g" * 40)}


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    torch.manual_seed(0)
    model = unitok.create_model("flextok-tiny").eval()
    return stage(model, "org/flextok-tiny", tmp_path_factory.mktemp("st") / "repo", random_weights=True)


def test_new_repo_upload_call(staged):
    api = RecordingApi()
    result = push(staged, transport=HubTransport(api=api), private=True, commit_message="first upload")
    names = [name for name, _ in api.calls]
    assert names == ["create_repo", "upload_folder"]
    assert api.calls[0][1] == {"repo_id": "org/flextok-tiny", "repo_type": "model", "private": True, "exist_ok": True}
    assert api.calls[1][1] == {
        "repo_id": "org/flextok-tiny", "folder_path": str(staged.folder), "repo_type": "model", "revision": "main",
        "commit_message": "first upload", "create_pr": False, "delete_patterns": "*", "parent_commit": "main-head"}
    assert result.changed and result.commit == "c" * 40
    assert set(result.changed_files) == {f.path for f in staged.files}


def test_identical_remote_uploads_nothing(staged):
    api = RecordingApi({"main": remote_copy(staged)})
    result = push(staged, transport=HubTransport(api=api))
    assert [name for name, _ in api.calls] == ["create_repo"]
    assert not result.changed and result.commit == "main-head"


def test_main_with_another_model_is_not_overwritten_without_the_flag(staged):
    remote = remote_copy(staged)
    remote["model.safetensors"] = ("0" * 64, "x" * 40)
    remote["stale.py"] = (None, "s" * 40)
    api = RecordingApi({"main": remote})
    with pytest.raises(PublishError, match=r"2 files differ: model.safetensors, stale.py.*--overwrite"):
        push(staged, transport=HubTransport(api=api))
    assert "upload_folder" not in [name for name, _ in api.calls]
    push(staged, transport=HubTransport(api=api), overwrite=True)
    push(staged, transport=HubTransport(api=api), create_pr=True)
    uploads = [kwargs for name, kwargs in api.calls if name == "upload_folder"]
    assert [(u["create_pr"], u["parent_commit"], u["delete_patterns"]) for u in uploads] == [
        (False, "main-head", "*"), (True, None, "*")]


def test_missing_branch_is_created_from_main(staged):
    api = RecordingApi({"main": {"config.json": (None, "1" * 40)}})
    push(staged, transport=HubTransport(api=api), revision="v1")
    assert [(n, k.get("branch")) for n, k in api.calls] == [("create_repo", None), ("create_branch", "v1"),
                                                             ("upload_folder", None)]
    assert api.calls[-1][1]["revision"] == "v1"
    with pytest.raises(PublishError, match="no branch 'v2' to open a pull request against"):
        push(staged, transport=HubTransport(api=RecordingApi()), revision="v2", create_pr=True)


def test_refused_and_unreachable_uploads_are_clear_and_never_show_the_token(staged, tmp_path):
    denied = HfHubHTTPError("401 Client Error: Unauthorized", response=http_response(401))
    with pytest.raises(PublishError, match="401.*hf auth login"):
        push(staged, transport=HubTransport(api=RecordingApi(fail_with=denied)))
    # the command line, the real client, a token in the environment, an endpoint nobody listens on
    secret = "hf_unitokTestSecretToken0123456789"
    model_dir = tmp_path / "model"
    unitok.create_model("flextok-tiny").save_pretrained(model_dir)
    (model_dir / "recipe.yaml").write_text("model: {name: flextok-tiny}\n")
    env = {**os.environ, "HF_TOKEN": secret, "HF_ENDPOINT": "http://127.0.0.1:9"}
    result = subprocess.run([sys.executable, "-m", "unitok.cli", "push", str(model_dir), "org/flextok-tiny"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Cannot reach http://127.0.0.1:9" in result.stderr
    assert secret not in result.stdout + result.stderr


def test_git_transport_layout(staged, tmp_path):
    repo = tmp_path / "mirror"
    result = push(staged, transport=GitTransport(repo), commit_message="publish")
    git = lambda *args: subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,  # noqa: E731
                                       check=True).stdout
    assert git("log", "--format=%s").strip() == "publish"
    assert git("status", "--porcelain") == ""  # the checked-out work tree follows the branch
    files = set(git("ls-tree", "-r", "--name-only", "HEAD").split())
    assert files == {f.path for f in staged.files} | {".gitattributes"}
    weights = next(f for f in staged.files if f.path == "model.safetensors")
    pointer = git("show", "HEAD:model.safetensors")
    assert pointer == f"version https://git-lfs.github.com/spec/v1\noid sha256:{weights.sha256}\nsize {weights.size}\n"
    obj = repo / ".git" / "lfs" / "objects" / weights.sha256[:2] / weights.sha256[2:4] / weights.sha256
    assert obj.read_bytes() == (staged.folder / "model.safetensors").read_bytes()
    assert git("show", "HEAD:config.json") == (staged.folder / "config.json").read_text()
    assert "*.safetensors filter=lfs" in git("show", "HEAD:.gitattributes")
    with pytest.raises(PublishError, match="Pull requests exist on the Hub only"):
        push(staged, transport=GitTransport(repo), create_pr=True)
    with pytest.raises(PublishError, match="not a valid branch name"):
        push(staged, transport=GitTransport(repo), revision="bad..name")
    assert result.commit == git("rev-parse", "HEAD").strip()


def test_lfs_rule():
    assert stored_with_lfs("model.safetensors", b"{}", 2)
    assert stored_with_lfs("eval/reconstructions.png", b"\x89PNG\r\n\x1a\n\0\0", 10)
    assert stored_with_lfs("big.json", b"{", 11 * 2**20)
    assert not stored_with_lfs("config.json", b"{}", 2) and not stored_with_lfs("README.md", b"# x", 3)
    assert "*.safetensors" in HUB_LFS_PATTERNS
