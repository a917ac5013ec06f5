"""Provenance of converted checkpoints: every `convert_<x>_original.py` records what it converted.

`conversion.json` beside the converted weights names the official file and its sha256 and the converter, so that
`unitok.hub_upload` can state the weights' origin and licence on the model card without guessing.
"""

import hashlib
import json
from pathlib import Path

from .remote_code import write_atomic

PROVENANCE_FILE = "conversion.json"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def record_conversion(output_dir: str | Path, checkpoint: str | Path, converter: str, **details) -> dict:
    """Write `conversion.json` into `output_dir` (a converted model folder) and return its content."""
    from . import __version__

    record = {"checkpoint": Path(checkpoint).name, "sha256": sha256_file(checkpoint), "converter": converter,
              "unitok_version": __version__, **details}
    write_atomic(Path(output_dir) / PROVENANCE_FILE, json.dumps(record, indent=2) + "\n")
    return record


def load_converted(model, state: dict, family: str):
    """Load a converted state dict strictly: every tensor of `model` present, nothing extra (ValueError naming
    them). Returns the model in eval mode."""
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(f"Converted checkpoint does not match unitok's {family}: missing {missing[:10]}, "
                         f"unexpected {unexpected[:10]}.")
    model.load_state_dict(state, strict=True)
    return model.eval()


def read_conversion(folder: str | Path) -> dict | None:
    path = Path(folder) / PROVENANCE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


__all__ = ["PROVENANCE_FILE", "record_conversion", "read_conversion", "load_converted", "sha256_file"]
