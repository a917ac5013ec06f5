"""Checkpoints as explicit `checkpoints/step_XXXXXXXX/` folders, committed atomically.

Every process writes its part of the Accelerate state (model, optimiser, scheduler, EMA, per-process RNG) into
`checkpoints/.incomplete-step_XXXXXXXX/`; once all are done the main process adds `trainer_state.json` (step,
epoch, batch position) and `config.yaml`, then renames the folder to `step_XXXXXXXX` — a single atomic rename, so a
crash mid-write never leaves a folder that `resume: latest` would pick. Older checkpoints beyond `keep_last` are
pruned after the rename.
"""

import json
import os
import re
import shutil
import time
from pathlib import Path

STEP_PATTERN = re.compile(r"^step_(\d{8})$")
INCOMPLETE_PREFIX = ".incomplete-"


def checkpoint_dirs(root: str | Path) -> list[Path]:
    """Complete checkpoints under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and STEP_PATTERN.match(p.name)
             and (p / "trainer_state.json").is_file()]
    return sorted(found, key=lambda p: int(STEP_PATTERN.match(p.name).group(1)))


def latest_checkpoint(root: str | Path) -> Path | None:
    dirs = checkpoint_dirs(root)
    return dirs[-1] if dirs else None


def remove_incomplete(root: str | Path) -> list[Path]:
    """Delete leftovers of interrupted checkpoint writes (main process only)."""
    root = Path(root)
    stale = [p for p in root.glob(f"{INCOMPLETE_PREFIX}*") if p.is_dir()] if root.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def _fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())


def save_checkpoint(accelerator, root: str | Path, step: int, trainer_state: dict, config_yaml: str,
                    keep_last: int) -> Path:
    """Write, commit (rename) and prune; call on every process."""
    root = Path(root)
    name = f"step_{step:08d}"
    staging, final = root / f"{INCOMPLETE_PREFIX}{name}", root / name
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (staging / "trainer_state.json").write_text(json.dumps(trainer_state, indent=2))
        (staging / "config.yaml").write_text(config_yaml)
        _fsync_tree(staging)
        fault = os.environ.get("UNITOK_FAULT_SLEEP_BEFORE_COMMIT")  # "step:seconds", for crash tests only
        if fault and int(fault.split(":")[0]) == step:
            time.sleep(float(fault.split(":")[1]))
        if final.exists():
            shutil.rmtree(final)
        os.rename(staging, final)
        for old in checkpoint_dirs(root)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def resolve_resume(root: str | Path, resume: str | None) -> Path | None:
    """`latest` → newest complete checkpoint (None if there is none yet); a path → that checkpoint."""
    if resume is None:
        return None
    if resume == "latest":
        return latest_checkpoint(root)
    path = Path(resume)
    if not (path / "trainer_state.json").is_file():
        raise ValueError(f"train.resume: {resume} is not a complete checkpoint folder (no trainer_state.json).")
    return path


def load_trainer_state(path: Path) -> dict:
    return json.loads((Path(path) / "trainer_state.json").read_text())


__all__ = ["checkpoint_dirs", "latest_checkpoint", "remove_incomplete", "save_checkpoint", "resolve_resume",
           "load_trainer_state"]
