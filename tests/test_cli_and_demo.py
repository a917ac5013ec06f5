import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import unitok
from unitok.cli import main

SAMPLES = sorted((Path(unitok.__file__).parent / "assets" / "images").glob("*.png"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    unitok.create_model("flextok-tiny").save_pretrained(folder)
    return folder


def test_bundled_samples_have_licences():
    assert len(SAMPLES) >= 12
    licences = (SAMPLES[0].parent / "LICENSES.md").read_text()
    for path in SAMPLES:
        assert path.name in licences
        assert Image.open(path).size == (256, 256)


def test_list(capsys):
    assert main(["list", "--modality", "image"]) == 0
    assert "flextok-d18-d28" in capsys.readouterr().out


def test_encode_decode_reconstruct(model_dir, tmp_path):
    codes_path = tmp_path / "codes.json"
    assert main(["encode", "--model", str(model_dir), str(SAMPLES[0]), str(SAMPLES[1]), "-o", str(codes_path),
                 "--num-tokens", "16"]) == 0
    payload = json.loads(codes_path.read_text())
    assert payload["shape"] == [2, 16] and payload["model_type"] == "unitok_flextok"
    assert all(0 <= c < 64000 for row in payload["codes"] for c in row)
    out = tmp_path / "decoded.png"
    assert main(["decode", "--model", str(model_dir), str(codes_path), "-o", str(out), "--steps", "2"]) == 0
    assert Image.open(out).size == (128, 64)
    side = tmp_path / "side.png"
    assert main(["reconstruct", "--model", str(model_dir), str(SAMPLES[2]), "-o", str(side), "--steps", "1"]) == 0
    assert Image.open(side).size == (128, 64)


def test_clear_errors(model_dir, tmp_path, capsys):
    bad_image = tmp_path / "not_an_image.png"
    bad_image.write_text("hello")
    cases = [
        (["encode", "--model", str(model_dir), str(tmp_path / "missing.png"), "-o", "x.json"], "not found"),
        (["encode", "--model", str(model_dir), str(bad_image), "-o", "x.json"], "Cannot read"),
        (["encode", "--model", str(tmp_path / "nope"), str(SAMPLES[0]), "-o", "x.json"], "Cannot load model"),
        (["decode", "--model", str(model_dir), str(tmp_path / "none.json"), "-o", "x.png"], "not found"),
        (["decode", "--model", str(model_dir), str(bad_image), "-o", "x.png"], "not a codes file"),
        (["encode", "--model", str(model_dir), str(SAMPLES[0]), "-o", "x.json", "--num-tokens", "999"], "num-tokens"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        assert message in capsys.readouterr().err
    codes = tmp_path / "big.json"
    codes.write_text(json.dumps({"model_type": "unitok_flextok", "codes": [[70000]]}))
    assert main(["decode", "--model", str(model_dir), str(codes), "-o", str(tmp_path / "x.png")]) == 2
    assert "outside the codebook" in capsys.readouterr().err


def test_console_script_entry_point():
    script = Path(sys.executable).parent / "unitok"  # the installed console script
    result = subprocess.run([str(script), "list"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "flextok-tiny" in result.stdout


def test_training_demo_runs_end_to_end_quickly(tmp_path, capsys):
    """The README demo at a few steps per stage: trains both stages, exports, reloads, reconstructs, compares."""
    from unitok.demo import main as demo

    summary = demo(["--out", str(tmp_path), "--vae-steps", "2", "--tokenizer-steps", "2", "--sampling-steps", "1",
                    "--no-progress"])
    assert set(summary["psnr_after"]) == {"1", "16", "64", "256"}
    assert (tmp_path / "after" / "reconstructions.png").exists() and (tmp_path / "summary.json").exists()
    assert "untrained → trained" in capsys.readouterr().out
