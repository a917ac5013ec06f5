"""End to end: publish flextok-tiny (with an evaluation) with the git transport into the folder a local
Hub-protocol server (olah) serves, then load it by repo id the way users do in a process where unitok cannot be
imported, and run the card's own usage snippets. (Every tokenizer's Auto-class round trip through the server is in
TokenizerTesterMixin.test_hub_round_trip.)

olah answers a missing optional file at a branch name with 401 (see local-hub.md), so loads pin the commit sha.
"""

import os
import re

import pytest
import torch
import transformers
from huggingface_hub import ModelCard, constants, hf_hub_download
from PIL import Image
from safetensors.torch import load_file, save_file

import unitok
from tests.isolation import run_python
from unitok.evaluation import harness
from unitok.evaluation.common import EvalOptions
from unitok.hub_upload import GitTransport, PublishError, push, stage, validate_card

REPO = "org/flextok-tiny"
def sample_image(size: int) -> torch.Tensor:
    x = torch.linspace(-1, 1, size)
    return torch.stack([x[None, :].expand(size, size), x[:, None].expand(size, size), x.outer(x)])[None]


@pytest.fixture(scope="module")
def published(hub_server, tmp_path_factory):
    """flextok-tiny (random weights) + a short harness evaluation, staged and committed into the server's folder."""
    tmp = tmp_path_factory.mktemp("publish")
    torch.manual_seed(0)
    model = unitok.create_model("flextok-tiny").eval()
    folder = tmp / "model"
    model.save_pretrained(folder)
    harness.evaluate(str(folder), "bundled", folder / "eval",
                     EvalOptions(max_items=2, token_budgets=[4, 256], num_inference_steps=2, compute_fd=False))
    staged = stage(folder, REPO, tmp / "staged", random_weights=True)
    result = push(staged, transport=GitTransport(hub_server.repo_path(REPO)))
    assert result.changed and len(result.commit) == 40
    return model, staged, result.commit


def test_hub_endpoint_is_the_local_server():
    assert constants.ENDPOINT == os.environ["HF_ENDPOINT"]
    assert constants.ENDPOINT.startswith("http://127.0.0.1:")


def test_published_repo_serves_card_and_evaluation(published):
    """(Loading by repo id with the Auto classes is checked for every tokenizer by TokenizerTesterMixin.)"""
    model, staged, sha = published
    processor = transformers.AutoImageProcessor.from_pretrained(REPO, revision=sha)
    assert type(processor).__name__ == "FlexTokImageProcessor"
    card = ModelCard.load(hf_hub_download(REPO, "README.md", revision=sha))
    validate_card(card)
    results = card.data.eval_results
    assert {r.metric_type for r in results} >= {"psnr", "ssim"}
    assert any("@ 4 tokens" in r.metric_name for r in results)
    metrics_file = hf_hub_download(REPO, "eval/metrics.json", revision=sha)
    assert '"model_type": "unitok_flextok"' in open(metrics_file).read()
    assert hf_hub_download(REPO, "eval/reconstructions.png", revision=sha)


def test_remote_code_from_the_hub_without_unitok_matches(published, tmp_path):
    model, staged, sha = published
    x = sample_image(64)
    save_file({"x": x}, tmp_path / "inputs.safetensors")
    result = run_python(f"""
        import torch, transformers
        from safetensors.torch import load_file, save_file
        try:
            import unitok
            raise SystemExit("unitok should not be importable here")
        except ImportError:
            pass
        model = transformers.AutoModel.from_pretrained("{REPO}", revision="{sha}", trust_remote_code=True).eval()
        assert "transformers_modules" in type(model).__module__, type(model).__module__
        x = load_file("inputs.safetensors")["x"]
        codes = model.encode(x).codes
        rec = model.decode(codes[:, :7], generator=torch.Generator().manual_seed(0), num_inference_steps=2)
        save_file({{"codes": codes, "reconstruction": rec.reconstruction}}, "outputs.safetensors")
    """, tmp_path, block_unitok=True)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = load_file(tmp_path / "outputs.safetensors")
    codes = model.encode(x).codes
    assert torch.equal(outputs["codes"], codes)
    reference = model.decode(codes[:, :7], generator=torch.Generator().manual_seed(0), num_inference_steps=2)
    assert torch.equal(outputs["reconstruction"], reference.reconstruction)


def write_sample_input(modality: str, folder) -> None:
    """The input file the card snippets open: image.png or speech.wav."""
    if modality == "image":
        Image.fromarray(((sample_image(80)[0].permute(1, 2, 0) + 1) * 127.5).byte().numpy()).save(folder / "image.png")
    elif modality == "audio":
        import soundfile

        t = torch.arange(16000) / 16000
        soundfile.write(folder / "speech.wav", (0.3 * torch.sin(2 * torch.pi * 220 * t)).numpy(), 16000)
    else:
        raise NotImplementedError(f"no sample input for {modality} cards yet")


@pytest.mark.parametrize("variant", [name for name in unitok.list_models() if name.endswith("-tiny")])
def test_the_cards_usage_snippets_run(variant, hub_server, tmp_path):
    """Both snippets of a published card, verbatim except for the pinned revision: with unitok, and through remote
    code in a process where unitok cannot be imported."""
    repo = f"org/{variant}-card"
    torch.manual_seed(0)
    staged = stage(unitok.create_model(variant).eval(), repo, tmp_path / "staged", random_weights=True)
    sha = push(staged, transport=GitTransport(hub_server.repo_path(repo))).commit
    snippets = re.findall(r"```python\n(.*?)```", (staged.folder / "README.md").read_text(), re.S)
    assert len(snippets) == 2 and "import unitok" in snippets[0] and "trust_remote_code=True" in snippets[1]
    modality = unitok.create_config(variant).modality
    write_sample_input(modality, tmp_path)
    output = tmp_path / ("reconstruction.png" if modality == "image" else "reconstruction.wav")
    for snippet, block in zip(snippets, (False, True)):
        pinned = snippet.replace(f'"{repo}"', f'"{repo}", revision="{sha}"')
        result = run_python(pinned, tmp_path, block_unitok=block)
        assert result.returncode == 0, (snippet, result.stderr[-3000:])
        assert output.is_file() and output.stat().st_size > 0
        output.unlink()


def test_republishing_is_idempotent_and_main_is_protected(hub_server, tmp_path):
    repo = "org/flextok-tiny-overwrite"
    transport = GitTransport(hub_server.repo_path(repo))
    torch.manual_seed(0)
    first = unitok.create_model("flextok-tiny").eval()
    result = push(stage(first, repo, tmp_path / "a", random_weights=True), transport=transport)
    again = push(stage(first, repo, tmp_path / "b", random_weights=True), transport=transport)
    assert not again.changed and again.commit == result.commit

    torch.manual_seed(1)
    second = unitok.create_model("flextok-tiny").eval()
    staged = stage(second, repo, tmp_path / "c", random_weights=True)
    with pytest.raises(PublishError, match="Refusing to overwrite main.*model.safetensors|model.safetensors.*Refusing"):
        push(staged, transport=transport)
    branch = push(staged, transport=transport, revision="candidate")  # other branches are free
    replaced = push(staged, transport=transport, overwrite=True)
    assert replaced.changed and replaced.commit != result.commit and branch.commit != result.commit

    x = sample_image(64)
    for sha, expected in ((result.commit, first), (replaced.commit, second), (branch.commit, second)):
        served = transformers.AutoModel.from_pretrained(repo, revision=sha).eval()
        assert torch.equal(served.encode(x).codes, expected.encode(x).codes), sha


def test_lora_adapter_round_trip_through_the_hub(hub_server, tmp_path):
    """A base and a LoRA adapter published separately; the adapter loads by repo id onto the base (unitok and plain
    PEFT on remote code, as the adapter card's snippets show) and reproduces the in-memory outputs."""
    base_repo, adapter_repo = "org/flextok-tiny-base", "org/flextok-tiny-lora"
    torch.manual_seed(0)
    base = unitok.create_model("flextok-tiny").eval()
    with torch.no_grad():  # open the adaLN-zero gates so the adapter changes outputs
        for param in base.parameters():
            if not param.any():
                param.normal_(0, 0.02)
    base_sha = push(stage(base, base_repo, tmp_path / "base", random_weights=True),
                    transport=GitTransport(hub_server.repo_path(base_repo))).commit
    adapted = unitok.lora.apply(transformers.AutoModel.from_pretrained(base_repo, revision=base_sha), r=2,
                                base_model_name_or_path=base_repo)
    with torch.no_grad():
        for name, param in adapted.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    staged = stage(adapted.eval(), adapter_repo, tmp_path / "adapter")  # licence read from the base's Hub card
    assert ModelCard.load(staged.folder / "README.md").data.license == "apache-2.0"
    adapter_sha = push(staged, transport=GitTransport(hub_server.repo_path(adapter_repo))).commit

    codes = torch.randint(0, base.codebook_size, (2, 12))
    expected = adapted.decode(codes, generator=torch.Generator().manual_seed(0), num_inference_steps=2).reconstruction
    loaded = unitok.lora.load_adapter(unitok.AutoTokenizer.from_pretrained(base_repo, revision=base_sha), adapter_repo,
                                      revision=adapter_sha).eval()
    out = loaded.decode(codes, generator=torch.Generator().manual_seed(0), num_inference_steps=2).reconstruction
    assert torch.equal(out, expected)

    snippets = re.findall(r"```python\n(.*?)```", (staged.folder / "README.md").read_text(), re.S)
    assert len(snippets) == 2 and "PeftModel.from_pretrained" in snippets[1]
    Image.fromarray(((sample_image(64)[0].permute(1, 2, 0) + 1) * 127.5).byte().numpy()).save(tmp_path / "image.png")
    for snippet, block in zip(snippets, (False, True)):
        pinned = snippet.replace(f'"{base_repo}"', f'"{base_repo}", revision="{base_sha}"').replace(
            f'"{adapter_repo}"', f'"{adapter_repo}", revision="{adapter_sha}"')
        result = run_python(pinned, tmp_path, block_unitok=block)
        assert result.returncode == 0, (snippet, result.stderr[-3000:])
        assert Image.open(tmp_path / "reconstruction.png").size == (64, 64)
        (tmp_path / "reconstruction.png").unlink()
