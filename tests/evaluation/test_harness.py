"""`unitok eval` / `unitok compare` end to end on flextok-tiny and the shipped images."""

import json

import pytest
import torch
from PIL import Image

import unitok
from unitok.cli import main
from unitok.evaluation.common import EvalOptions, codebook_statistics
from unitok.evaluation.harness import evaluate


@pytest.fixture(scope="module")
def trained_looking_model(tmp_path_factory):
    """flextok-tiny with random non-zero heads, so codes and reconstructions vary (an untrained model's zero heads
    map every image to one code)."""
    torch.manual_seed(0)
    model = unitok.create_model("flextok-tiny")
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad and not parameter.any():
                parameter.normal_(0, 0.05)
        model.encoder.to_latents.weight.normal_(0, 0.5)
    folder = tmp_path_factory.mktemp("model")
    model.save_pretrained(folder)
    return folder


def test_eval_writes_metrics_report_and_figures(trained_looking_model, tmp_path):
    out = tmp_path / "eval"
    results = evaluate(str(trained_looking_model), "bundled:6", out,
                       EvalOptions(num_inference_steps=2, token_budgets=[1, 16, 256], batch_size=4))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_items"] == 6 and metrics["modality"] == "image"
    assert set(metrics["budgets"]) == {"1", "16", "256"}
    top = metrics["budgets"]["256"]
    assert top["tokens"] == 256 and abs(top["bits_per_pixel"] - 256 * 15.965784 / 64**2) < 1e-4
    for name in ("psnr", "ssim", "st_lpips"):
        assert top[name]["n"] == 6 and top[name]["mean"] == top[name]["mean"]
    assert "FD-EffNetLite0" in top and "ms_ssim" in metrics["skipped"]  # 64² images: MS-SSIM needs 161 px
    assert metrics["codebook"]["used_codes"] > 1 and metrics["codebook"]["perplexity"] > 1
    assert metrics["throughput"]["evaluation_seconds_per_item"] > 0
    assert len(metrics["per_item"]) == 6
    for figure in ("reconstructions.png", "codebook_usage.png", "rate_distortion.png"):
        with Image.open(out / figure) as image:
            assert image.size[0] > 300 and image.size[1] > 200
    report = (out / "report.md").read_text()
    assert "PSNR" in report and "ST-LPIPS" in report and "![rate_distortion](rate_distortion.png)" in report
    assert results["budgets"]["1"]["psnr"]["mean"] == metrics["budgets"]["1"]["psnr"]["mean"]


def test_psnr_in_the_report_equals_a_direct_computation(trained_looking_model, tmp_path):
    """The harness's numbers are the model's round trip, scored independently here."""
    results = evaluate(str(trained_looking_model), "bundled:2", tmp_path,
                       EvalOptions(num_inference_steps=2, token_budgets=[8], compute_fd=False))
    model = unitok.AutoTokenizer.from_pretrained(trained_looking_model).eval()
    processor = model.build_preprocessor()
    items = unitok.data.images.bundled_images()[:2]
    x = processor([Image.fromarray(i.image.permute(1, 2, 0).numpy()) for i in items], return_tensors="pt")[
        "pixel_values"]
    codes = model.encode(x).codes[:, :8]
    generators = [torch.Generator().manual_seed(i) for i in range(2)]
    recon = model.decode(codes, generator=generators, num_inference_steps=2).reconstruction.clamp(-1, 1)
    mse = (((x + 1) / 2 - (recon + 1) / 2) ** 2).flatten(1).mean(1)
    expected = (10 * torch.log10(1 / mse)).mean().item()
    assert abs(results["budgets"]["8"]["psnr"]["mean"] - expected) < 1e-3


def test_bad_images_in_the_data_are_skipped_with_a_warning(trained_looking_model, tmp_path):
    data = tmp_path / "images"
    data.mkdir()
    Image.new("RGB", (80, 60), "blue").save(data / "ok.png")
    (data / "corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.warns(UserWarning, match="corrupt.jpg"):
        results = evaluate(str(trained_looking_model), str(data), tmp_path / "out",
                           EvalOptions(num_inference_steps=1, token_budgets=[4], compute_fd=False))
    assert results["num_items"] == 1


def test_cli_eval_and_compare(trained_looking_model, tmp_path, capsys):
    assert main(["eval", "--model", str(trained_looking_model), "--data", "bundled:2", "--out", str(tmp_path / "e"),
                 "--steps", "1", "--budgets", "1,4", "--no-fd"]) == 0
    assert "s/item" in capsys.readouterr().out
    assert main(["compare", str(trained_looking_model), "flextok-tiny", "--data", "bundled:2",
                 "--out", str(tmp_path / "c"), "--steps", "1", "--budgets", "2,8", "--no-fd"]) == 0
    table = (tmp_path / "c" / "comparison.md").read_text()
    assert "flextok-tiny" in table and (tmp_path / "c" / "rate_distortion.png").exists()
    assert main(["eval", "--model", str(trained_looking_model), "--data", str(tmp_path / "nothing"),
                 "--out", str(tmp_path / "x")]) == 2
    assert "Unknown image data" in capsys.readouterr().err


def test_codebook_statistics_against_hand_counts():
    stats = codebook_statistics(torch.tensor([[0, 0, 1, 3]]), 4)
    assert stats["used_codes"] == 3 and stats["usage"] == 0.75
    probabilities = torch.tensor([0.5, 0.25, 0.25])
    expected = torch.exp(-(probabilities * probabilities.log()).sum()).item()
    assert abs(stats["perplexity"] - expected) < 1e-5 and abs(stats["entropy_bits"] - 1.5) < 1e-5
