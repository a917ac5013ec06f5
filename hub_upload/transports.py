"""Transports push a staged repository somewhere; both follow the same rules.

- The pushed revision ends up holding exactly the staged files (plus `.gitattributes`): files from an older upload
  that are not staged any more are deleted in the same commit.
- Re-running the same upload changes nothing and reports the existing commit (idempotent).
- A `main` that already holds other content is not replaced unless `overwrite=True`; other branches and pull
  requests are.

`HubTransport` talks to the Hugging Face Hub with `huggingface_hub` (`create_repo` + `upload_folder`). `GitTransport`
writes one commit into a local git repository, with git-lfs pointers for weights and binary files: mirrors,
air-gapped registries, and the folders a local Hub-protocol server (olah) serves.
"""

import fnmatch
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .staging import StagedRepo, file_digests

# A repository holding only these is treated as empty (the Hub creates `.gitattributes` with every repo).
PLACEHOLDER_FILES = {".gitattributes", "README.md"}
# The Hub's default `.gitattributes` patterns: these files are stored with LFS.
HUB_LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*", "*.mlmodel",
    "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt",
    "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz",
    "*.zip", "*.zst", "*tfevents*",
)
LFS_SIZE_THRESHOLD = 10 * 2**20  # the Hub refuses larger files outside LFS


class PublishError(RuntimeError):
    """The push was refused or failed; nothing was changed on the destination."""


@dataclass
class PushResult:
    repo_id: str
    revision: str
    commit: str | None  # the commit that holds the staged files (new, or the existing one when nothing changed)
    changed: bool
    url: str | None = None
    changed_files: list[str] = field(default_factory=list)


def changed_files(staged: StagedRepo, remote: dict[str, tuple[str | None, str]]) -> list[str]:
    """Paths that differ between the stage and a remote listing {path: (lfs sha256 or None, git blob sha1)}."""
    local = {f.path: f for f in staged.files}
    changed = []
    for path in sorted((set(local) | set(remote)) - {".gitattributes"}):
        if path not in local or path not in remote:
            changed.append(path)
            continue
        lfs_sha256, blob_sha1 = remote[path]
        same = local[path].sha256 == lfs_sha256 if lfs_sha256 else local[path].git_sha1 == blob_sha1
        if not same:
            changed.append(path)
    return changed


def _has_content(paths) -> bool:
    return bool(set(paths) - PLACEHOLDER_FILES)


def _refuse_overwrite(staged: StagedRepo, where: str, changed: list[str]) -> PublishError:
    shown = ", ".join(changed[:8]) + (" …" if len(changed) > 8 else "")
    return PublishError(f"{where} already holds a different repository ({len(changed)} files differ: {shown}). "
                        "Refusing to overwrite main: pass overwrite=True (--overwrite), or publish to another "
                        "revision (--revision) or as a pull request (--create-pr).")


class HubTransport:
    """Push to the Hugging Face Hub (or any endpoint speaking its API).

    The token is resolved by `huggingface_hub` (the `token` argument, else `HF_TOKEN`, else the token saved by
    `hf auth login`); this module never prints or logs it.
    """

    def __init__(self, token: str | None = None, endpoint: str | None = None, api=None):
        if api is None:
            from huggingface_hub import HfApi

            api = HfApi(endpoint=endpoint, token=token)
        self.api = api

    def _remote_state(self, repo_id: str, revision: str):
        """({path: (lfs sha256, blob sha1)}, head commit) at `revision`, or (None, None) if the branch is missing."""
        from huggingface_hub.errors import RevisionNotFoundError

        try:
            head = self.api.repo_info(repo_id, revision=revision).sha
            entries = self.api.list_repo_tree(repo_id, revision=head, recursive=True)
            files = {e.path: (e.lfs.sha256 if e.lfs else None, e.blob_id) for e in entries if hasattr(e, "blob_id")}
        except RevisionNotFoundError:
            return None, None
        return files, head

    def push(self, staged: StagedRepo, *, revision: str = "main", create_pr: bool = False, private: bool = False,
             commit_message: str, overwrite: bool = False) -> PushResult:
        from huggingface_hub.errors import HfHubHTTPError

        repo_id = staged.repo_id
        try:
            self.api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
            remote, head = self._remote_state(repo_id, revision)
            if remote is None:
                if create_pr:
                    raise PublishError(f"{repo_id} has no branch {revision!r} to open a pull request against.")
                self.api.create_branch(repo_id, branch=revision, exist_ok=True)  # branches off main
                remote, head = self._remote_state(repo_id, revision)
            changed = changed_files(staged, remote or {})
            if not changed:
                return PushResult(repo_id, revision, head, changed=False)
            if revision == "main" and not create_pr and not overwrite and _has_content(remote):
                raise _refuse_overwrite(staged, f"{repo_id}@main", changed)
            info = self.api.upload_folder(
                repo_id=repo_id, folder_path=str(staged.folder), repo_type="model", revision=revision,
                commit_message=commit_message, create_pr=create_pr, delete_patterns="*",
                parent_commit=None if create_pr else head,  # fail rather than clobber a concurrent change
            )
        except HfHubHTTPError as error:
            status = getattr(getattr(error, "response", None), "status_code", None)
            hint = (" Log in with `hf auth login` or set HF_TOKEN to a token with write access."
                    if status in (401, 403) else "")
            raise PublishError(f"The Hub refused the upload to {repo_id} ({status}): {error}.{hint}") from None
        except Exception as error:
            # huggingface_hub's HTTP client (httpx / httpx2 across versions) raises RequestError subclasses when the
            # endpoint cannot be reached; match them by name rather than importing a client-specific module
            if not isinstance(error, OSError) and "RequestError" not in {c.__name__ for c in type(error).__mro__}:
                raise
            endpoint = getattr(self.api, "endpoint", "the Hub")
            raise PublishError(f"Cannot reach {endpoint} to upload {repo_id}: {type(error).__name__}: {error}") \
                from None
        return PushResult(repo_id, revision, info.oid, changed=True, url=info.pr_url or info.commit_url,
                          changed_files=changed)


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _matches_lfs_pattern(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(path if "/" in pattern else name, pattern) for pattern in HUB_LFS_PATTERNS)


def stored_with_lfs(path: str, head: bytes, size: int) -> bool:
    """The Hub's rule: LFS patterns, files over 10 MiB, and binary files (a NUL byte in the first 8 KiB, `head`)."""
    return _matches_lfs_pattern(path) or size > LFS_SIZE_THRESHOLD or b"\0" in head[:8192]


class GitTransport:
    """Write the staged repository as one commit on a branch of a local git repository (created if missing).

    Weights, binary files and files over 10 MiB become git-lfs pointers, with their objects under
    `.git/lfs/objects/` (the git-lfs layout; no git-lfs binary needed). The branch moves with a compare-and-swap
    `update-ref`, after every object is written, so readers see the old commit or the new one. A checked-out,
    clean work tree is updated to the new commit; a work tree with local changes is left alone.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _git(self, *args, input: bytes | None = None, env: dict | None = None, check: bool = True) -> str:
        result = subprocess.run(["git", "-C", str(self.path), *args], input=input, capture_output=True,
                                env={**os.environ, **(env or {})})
        if check and result.returncode != 0:
            raise PublishError(f"git {' '.join(args[:2])} failed in {self.path}: "
                               f"{result.stderr.decode(errors='replace').strip()}")
        return result.stdout.decode().strip()

    def _ensure_repo(self) -> Path:
        if not (self.path / ".git").exists() and not (self.path / "HEAD").is_file():
            self.path.mkdir(parents=True, exist_ok=True)
            self._git("init", "-q", "-b", "main")
        return Path(self._git("rev-parse", "--absolute-git-dir"))

    def _identity(self) -> dict:
        if self._git("config", "user.name", check=False) and self._git("config", "user.email", check=False):
            return {}
        who = {"NAME": "unitok hub_upload", "EMAIL": "hub-upload@unitok.invalid"}
        return {f"GIT_{role}_{key}": value for role in ("AUTHOR", "COMMITTER") for key, value in who.items()}

    @staticmethod
    def _store_lfs_object(git_dir: Path, sha256: str, source: Path) -> None:
        target = git_dir / "lfs" / "objects" / sha256[:2] / sha256[2:4] / sha256
        if target.is_file() and target.stat().st_size == source.stat().st_size:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incomplete-")
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise

    def _write_tree(self, staged: StagedRepo) -> tuple[str, list[tuple[str, Path]]]:
        """The commit's tree (blobs written, LFS files as pointers) and the LFS objects still to store."""
        entries, lfs_paths, lfs_objects = [], [], []
        for file in staged.files:
            path = staged.folder / file.path
            with open(path, "rb") as handle:
                head = handle.read(8192)
            if file_digests(path)[0] != file.sha256:
                raise PublishError(f"{file.path} changed since it was staged; stage again.")
            if stored_with_lfs(file.path, head, file.size):
                lfs_objects.append((file.sha256, path))
                data = _lfs_pointer(file.sha256, file.size)
                if not _matches_lfs_pattern(file.path):
                    lfs_paths.append(file.path)
            else:
                data = path.read_bytes()
            entries.append((self._git("hash-object", "-w", "--stdin", input=data), file.path))
        attributes = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in (*HUB_LFS_PATTERNS, *lfs_paths))
        entries.append((self._git("hash-object", "-w", "--stdin", input=attributes.encode()), ".gitattributes"))
        with tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            index_info = "".join(f"100644 {sha}\t{path}\n" for sha, path in entries)
            self._git("update-index", "--add", "--index-info", input=index_info.encode(), env=env)
            return self._git("write-tree", env=env), lfs_objects

    def push(self, staged: StagedRepo, *, revision: str = "main", create_pr: bool = False, private: bool = False,
             commit_message: str, overwrite: bool = False) -> PushResult:
        if create_pr:
            raise PublishError("Pull requests exist on the Hub only; the git transport commits to a branch.")
        git_dir = self._ensure_repo()
        if self._git("check-ref-format", "--branch", revision, check=False) != revision:
            raise PublishError(f"{revision!r} is not a valid branch name.")
        ref = f"refs/heads/{revision}"
        old = self._git("rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False) or None
        tree, lfs_objects = self._write_tree(staged)
        if old is not None and self._git("rev-parse", f"{old}^{{tree}}") == tree:
            return PushResult(staged.repo_id, revision, old, changed=False)
        remote = {}
        if old is not None:
            for line in self._git("ls-tree", "-r", old).splitlines():
                meta, path = line.split("\t", 1)
                remote[path] = (None, meta.split()[2])
        # LFS pointers compare by blob id: rewrite the stage's view of those files the same way
        changed = changed_files(staged, {p: self._lfs_view(staged, p, blob) for p, (_, blob) in remote.items()})
        if old is not None and revision == "main" and not overwrite and _has_content(remote):
            raise _refuse_overwrite(staged, f"{self.path}@main", changed)
        for sha256, source in lfs_objects:  # every object in place before the branch points at the pointers
            self._store_lfs_object(git_dir, sha256, source)
        parent = old or self._git("rev-parse", "--verify", "-q", "refs/heads/main^{commit}", check=False) or None
        commit = self._git("commit-tree", tree, *(["-p", parent] if parent else []), "-m", commit_message,
                           env=self._identity())
        update_work_tree = self._checked_out_and_clean(ref)
        self._git("update-ref", ref, commit, old or "0" * 40)
        if update_work_tree:
            self._git("read-tree", "-u", "-m", *([old] if old else []), commit)
        return PushResult(staged.repo_id, revision, commit, changed=True, changed_files=changed)

    @staticmethod
    def _lfs_view(staged: StagedRepo, path: str, blob: str) -> tuple[str | None, str]:
        """Remote entry as the Hub would report it: an LFS pointer of a staged file stands for that file."""
        local = next((f for f in staged.files if f.path == path), None)
        if local is not None:
            pointer = _lfs_pointer(local.sha256, local.size)
            if hashlib.sha1(b"blob %d\0" % len(pointer) + pointer).hexdigest() == blob:
                return local.sha256, blob
        return None, blob

    def _checked_out_and_clean(self, ref: str) -> bool:
        """The branch is checked out in a work tree without local changes or untracked files (safe to update)."""
        if self._git("rev-parse", "--is-bare-repository") == "true":
            return False
        if self._git("symbolic-ref", "-q", "HEAD", check=False) != ref:
            return False
        return self._git("status", "--porcelain", "--untracked-files=all") == ""


__all__ = ["HubTransport", "GitTransport", "PushResult", "PublishError", "changed_files", "stored_with_lfs"]
