"""The harness on speech, motion and CAD data with exact toy tokenizers (the real models of those modalities land in
later issues): each run writes metrics.json, a report and real figures, and the numbers match the codecs."""

import json
import math

import pytest

from tests.toy_tokenizers import (
    ToyCADConfig, ToyCADTokenizer, ToyMotionConfig, ToyMotionTokenizer, ToyMuLawCodec, ToyMuLawConfig,
)
from unitok.evaluation.common import EvalOptions
from unitok.evaluation.harness import evaluate


def test_speech_evaluation_of_a_mu_law_codec(tmp_path):
    model = ToyMuLawCodec(ToyMuLawConfig())
    evaluate(model, "fixtures", tmp_path, EvalOptions(batch_size=2))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["modality"] == "audio" and metrics["num_items"] >= 2
    assert abs(metrics["tokens_per_second"] - 16000) < 1 and abs(metrics["bits_per_second"] - 128000) < 1
    m = metrics["metrics"]
    assert m["pesq_wb"]["mean"] > 3.5 and m["stoi"]["mean"] > 0.95  # 8-bit μ-law is near transparent
    assert m["speaker_similarity"]["mean"] > 0.9 and m["wer"]["mean"] < 0.2
    assert 0 < m["mel_distance"]["mean"] < 1.0
    assert metrics["codebook"]["used_codes"] > 100
    assert any(name.endswith("_spectrogram.png") for name in metrics["figures"].values())
    assert any(name.endswith(".wav") for name in metrics["figures"].values())
    assert "pesq_wb" in (tmp_path / "report.md").read_text()
    coarse = evaluate(ToyMuLawCodec(ToyMuLawConfig(bits=3)), "fixtures", tmp_path / "coarse",
                      EvalOptions(batch_size=2))
    assert coarse["metrics"]["pesq_wb"]["mean"] < m["pesq_wb"]["mean"]  # fewer bits, worse quality


def test_motion_evaluation_beats_copying_the_first_frame(tmp_path):
    model = ToyMotionTokenizer(ToyMotionConfig())
    results = evaluate(model, "video:4", tmp_path, EvalOptions(batch_size=2))
    m = results["metrics"]
    assert results["num_items"] == 4 and abs(results["bits_per_token"] - math.log2(17)) < 1e-9
    assert m["psnr"]["mean"] > m["copy_psnr"]["mean"]  # the tokens carry the motion
    assert (tmp_path / "reconstructions.png").exists() and (tmp_path / "report.md").exists()


def test_cad_evaluation_accuracy_validity_and_geometry(tmp_path):
    exact = evaluate(ToyCADTokenizer(ToyCADConfig()), "generated:4", tmp_path / "exact", EvalOptions(batch_size=2))
    m = exact["metrics"]
    assert m["command_accuracy"]["mean"] == 1.0 and m["parameter_accuracy"]["mean"] == 1.0
    assert exact["invalid_ratio"] == 0.0 and m["chamfer_distance"]["mean"] < 1e-3
    coarse = evaluate(ToyCADTokenizer(ToyCADConfig(drop_last_parameter_bits=3)), "generated:4", tmp_path / "coarse",
                      EvalOptions(batch_size=2))
    assert coarse["metrics"]["parameter_accuracy"]["mean"] < 1.0
    assert coarse["metrics"]["command_accuracy"]["mean"] == 1.0


def test_unknown_data_specs_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="Unknown speech data"):
        evaluate(ToyMuLawCodec(ToyMuLawConfig()), "librispeech", tmp_path)
    with pytest.raises(ValueError, match="Unknown CAD data"):
        evaluate(ToyCADTokenizer(ToyCADConfig()), "deepcad", tmp_path)
