"""The training recipes end to end: config validation, a 2-process gloo run through `accelerate launch` with
checkpoints, pruning, deterministic resume and export, and a crash in the middle of a checkpoint write."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import transformers

import unitok
from unitok.training.checkpoint import checkpoint_dirs, latest_checkpoint
from unitok.training.config import ConfigError, load_config
from unitok.training.loop import train

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
TINY = RECIPES / "configs" / "flextok" / "tiny_tokenizer.yaml"
# flextok-tiny from scratch, tiny batches, every step logged
QUICK = ["model.pretrained=null", "model.name=flextok-tiny", "train.batch_size=2", "train.log_every=1",
         "train.tracker=null", "train.progress=false", "optim.warmup_steps=1", "train.ema_decay=0.9"]


def env(tmp_path):
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "OMP_NUM_THREADS": "1",
            "HF_HOME": str(tmp_path / "hf"), "ACCELERATE_USE_CPU": "true"}


def launch(tmp_path, overrides, processes=2, check=True, extra_env=None, **popen):
    accelerate = Path(sys.executable).parent / "accelerate"
    mode = ["--multi_gpu"] if processes > 1 else ["--cpu"]
    command = [str(accelerate), "launch", *mode, "--num_processes", str(processes), "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
               str(RECIPES / "train.py"), "--config", str(TINY), *QUICK, *overrides]
    environment = {**env(tmp_path), **(extra_env or {})}
    if popen:
        return subprocess.Popen(command, env=environment, cwd=tmp_path, **popen)
    result = subprocess.run(command, env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr[-4000:]
    return result


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "loss_history.jsonl").read_text().splitlines()]
    return {row["step"]: row["loss"] for row in rows}


def test_bad_configs_fail_before_training(tmp_path, capsys):
    with pytest.raises(ConfigError, match="unknown model 'flextok-huge'"):
        load_config(TINY, ["model.pretrained=null", "model.name=flextok-huge"])
    with pytest.raises(ConfigError, match="unknown key.*train.stepz"):
        load_config(TINY, ["train.stepz=3"])
    with pytest.raises(ConfigError, match="train.steps: expected int"):
        load_config(TINY, ["train.steps=many"])
    with pytest.raises(ConfigError, match="optim.schedule"):
        load_config(TINY, ["optim.schedule=exponential"])
    with pytest.raises(ConfigError, match="exactly one of model.name"):
        load_config(TINY, ["model.name=flextok-tiny"])
    with pytest.raises(ConfigError, match="LoRA fine-tunes a pretrained checkpoint"):
        load_config(TINY, ["model.pretrained=null", "model.name=flextok-tiny", "lora.preset=decoder"])
    with pytest.raises(ConfigError, match="lora.r must be >= 1"):
        load_config(TINY, ["lora.preset=decoder", "lora.r=0"])
    sys.path.insert(0, str(RECIPES))
    try:
        from train import main as recipe_main
    finally:
        sys.path.remove(str(RECIPES))
    assert recipe_main(["--config", str(TINY), "train.batch_size=zero"]) == 2
    assert "config error: train.batch_size" in capsys.readouterr().err


def test_every_recipe_config_validates(tmp_path):
    configs = sorted((RECIPES / "configs").rglob("*.yaml"))
    families = {path.parent.name for path in configs}
    assert {"flextok"} <= families
    base = tmp_path / "base"
    unitok.create_model("flextok-tiny").save_pretrained(base)
    for path in configs:
        text = path.read_text()
        if "\nlora:" in text or "reinitialize:" in text:  # starts from a checkpoint: point it at a local one
            overrides = [f"model.pretrained={base}"]
        elif "pretrained" in text and "name:" not in text:
            overrides = ["model.pretrained=null", "model.name=flextok-tiny"]
        else:
            overrides = []
        config = load_config(path, overrides)
        assert config.train.steps > 0
    own = [n for n in unitok.list_models()
           if unitok.registry.get_variant(n).config_class.__module__.startswith("unitok.")]  # not tests' toys
    for name in own:
        family = name.split("-")[0]
        assert family in families, f"no recipe for {name}"


def test_two_process_run_checkpoints_resumes_identically_and_exports(tmp_path):
    """2 gloo processes: an uninterrupted 6-step run vs. one stopped at step 4 and resumed: same losses."""
    full, split = tmp_path / "full", tmp_path / "split"
    common = ["train.steps=6", "train.checkpoint_every=2", "train.keep_last=2"]
    launch(tmp_path, [*common, f"train.output_dir={full}"])
    launch(tmp_path, [*common, f"train.output_dir={split}", "train.stop_at=4"])
    assert [p.name for p in checkpoint_dirs(split / "checkpoints")] == ["step_00000002", "step_00000004"]
    assert not (split / "export").exists()
    launch(tmp_path, [*common, f"train.output_dir={split}", "train.resume=latest"])
    # pruning keeps the last two; every checkpoint has both processes' RNG state and the config
    assert [p.name for p in checkpoint_dirs(split / "checkpoints")] == ["step_00000004", "step_00000006"]
    latest = latest_checkpoint(split / "checkpoints")
    assert {"random_states_0.pkl", "random_states_1.pkl", "config.yaml", "trainer_state.json"} <= \
        {p.name for p in latest.iterdir()}
    reference, resumed = losses(full), losses(split)
    assert sorted(reference) == [1, 2, 3, 4, 5, 6]
    for step in (5, 6):
        assert abs(reference[step] - resumed[step]) < 1e-5, (step, reference[step], resumed[step])
    model = transformers.AutoModel.from_pretrained(split / "export")
    assert type(model).__name__ == "FlexTokModel"
    assert (split / "export" / "recipe.yaml").exists() and (split / "config.yaml").exists()
    # the export carries the EMA weights, not the last raw weights
    from safetensors.torch import load_file

    raw = load_file(latest / "model.safetensors")
    exported = model.state_dict()
    key = "decoder.blocks.0.attn.wq.weight"
    assert not torch.equal(raw[key], exported[key])


def test_two_process_lora_run_trains_only_adapters_and_exports_the_adapter(tmp_path):
    """LoRA recipe on 2 gloo processes (DDP with only LoRA parameters trainable), from a saved checkpoint."""
    torch.manual_seed(0)
    base = unitok.create_model("flextok-tiny").eval()
    with torch.no_grad():  # a trained-like base: adaLN-zero gates open, so the decoder blocks carry signal
        for param in base.parameters():
            if not param.any():
                param.normal_(0, 0.02)
    base.save_pretrained(tmp_path / "base")
    run = tmp_path / "lora"
    launch(tmp_path, ["model.name=null", f"model.pretrained={tmp_path / 'base'}", "lora.preset=decoder", "lora.r=4",
                      "train.steps=4", "train.checkpoint_every=2", "train.ema_decay=0.0", "optim.lr=1e-2",
                      f"train.output_dir={run}"])
    export = run / "export"
    assert {"adapter_config.json", "adapter_model.safetensors", "unitok_adapter.json", "recipe.yaml"} <= \
        {p.name for p in export.iterdir()}
    assert not (export / "model.safetensors").exists()
    assert json.loads((export / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tmp_path / "base")
    adapted = unitok.lora.load_adapter(unitok.AutoTokenizer.from_pretrained(tmp_path / "base"), export).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    codes = base.encode(x).codes
    assert torch.equal(adapted.encode(x).codes, codes)
    before = base.decode(codes, generator=torch.Generator().manual_seed(0), num_inference_steps=2).reconstruction
    after = adapted.decode(codes, generator=torch.Generator().manual_seed(0), num_inference_steps=2).reconstruction
    assert not torch.allclose(before, after)
    assert sorted(losses(run)) == [1, 2, 3, 4]


def test_sigkill_during_a_checkpoint_write_resumes_from_the_previous_one(tmp_path):
    run = tmp_path / "run"
    overrides = ["train.steps=6", "train.checkpoint_every=2", f"train.output_dir={run}"]
    # the checkpoint of step 4 stalls after writing its files and before its commit (rename): kill it there
    process = launch(tmp_path, overrides, processes=1, extra_env={"UNITOK_FAULT_SLEEP_BEFORE_COMMIT": "4:300"},
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    environment_marker = run / "checkpoints" / ".incomplete-step_00000004"
    deadline = time.time() + 300
    while not (environment_marker.exists() and (environment_marker / "trainer_state.json").exists()):
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.time() < deadline, "the run never reached the step-4 checkpoint"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert latest_checkpoint(run / "checkpoints").name == "step_00000002"
    launch(tmp_path, [*overrides, "train.resume=latest"], processes=1)
    assert not list((run / "checkpoints").glob(".incomplete-*"))
    assert latest_checkpoint(run / "checkpoints").name == "step_00000006"
    assert sorted(losses(run))[-1] == 6
    unitok.AutoTokenizer.from_pretrained(run / "export")


def test_vae_stage_trains_in_process(tmp_path):
    config = load_config(RECIPES / "configs" / "flextok" / "tiny_vae.yaml",
                         ["train.steps=3", "train.batch_size=2", f"train.output_dir={tmp_path}", "train.tracker=null",
                          "train.progress=false", "train.log_every=1", "train.validate_every=3"])
    export = train(config)
    history = losses(tmp_path)
    assert sorted(history) == [1, 2, 3]
    model = unitok.AutoTokenizer.from_pretrained(export)
    assert model.config.train_stage == "vae"
    assert (tmp_path / "validation" / "step_00000003" / "metrics.json").exists()


def test_vae_stage_with_perceptual_and_gan_terms(tmp_path):
    """Stage 0 with ST-LPIPS and a PatchGAN discriminator (adaptive weight) from step 1: all terms are logged and
    the discriminator is checkpointed with the rest of the state."""
    config = load_config(RECIPES / "configs" / "flextok" / "tiny_vae.yaml",
                         ["train.steps=3", "train.batch_size=2", f"train.output_dir={tmp_path}", "train.tracker=null",
                          "train.progress=false", "train.log_every=1", "losses.perceptual_weight=0.1",
                          "losses.gan_weight=0.5", "losses.gan_start=1", "losses.disc_channels=16",
                          "train.checkpoint_every=3"])
    train(config)
    rows = [json.loads(line) for line in (tmp_path / "loss_history.jsonl").read_text().splitlines()]
    assert rows[0]["gan_discriminator_loss"] == rows[0]["gan_discriminator_loss"]  # logged (not NaN)
    assert rows[-1]["perceptual_loss"] > 0 and "gan_generator_loss" in rows[-1]
    checkpoint = latest_checkpoint(tmp_path / "checkpoints")
    assert (checkpoint / "model_1.safetensors").exists() and (checkpoint / "optimizer_1.bin").exists()
    with pytest.raises(ValueError, match="returns a reconstruction"):
        train(load_config(TINY, [*QUICK, "losses.gan_weight=0.5", f"train.output_dir={tmp_path / 'x'}"]))


def test_tokenizer_stage_with_repa_alignment(tmp_path):
    """REPA on the decoder's first block against the offline EfficientNet-Lite0 teacher: logged, negative cosine,
    and the projector is trained and checkpointed."""
    config = load_config(TINY, [*QUICK, "train.steps=2", f"train.output_dir={tmp_path}", "losses.repa_weight=0.5",
                                "losses.repa_layer=0", "train.checkpoint_every=2"])
    train(config)
    rows = [json.loads(line) for line in (tmp_path / "loss_history.jsonl").read_text().splitlines()]
    assert -0.5 <= rows[-1]["repa_loss"] <= 0.5 and rows[-1]["loss"] != rows[-1]["flow_loss"]
    assert (latest_checkpoint(tmp_path / "checkpoints") / "model_1.safetensors").exists()


def test_tadicodec_recipe_trains_on_speech_with_transcripts_in_dynamic_batches(tmp_path):
    config = load_config(RECIPES / "configs" / "tadicodec" / "tiny.yaml",
                         ["data.source=fixtures", "data.holdout=0", "train.steps=3", f"train.output_dir={tmp_path}",
                          "train.tracker=null", "train.progress=false", "train.log_every=1", "optim.warmup_steps=2"])
    export = train(config)
    assert sorted(losses(tmp_path)) == [1, 2, 3]
    model = unitok.AutoTokenizer.from_pretrained(export)
    assert type(model).__name__ == "TaDiCodecModel"
    assert transformers.AutoProcessor.from_pretrained(export).tokenizer is not None  # the transcript tokenizer


def test_dynamic_batches_bound_padded_frames_and_reshuffle_per_epoch():
    from unitok.training.data import DynamicBatches

    lengths = [50, 400, 120, 90, 300, 60, 410, 100]
    sampler = DynamicBatches(lengths, max_units=600, max_items=3, seed=0)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3 and max(lengths[i] for i in batch) * len(batch) <= 600
    sampler.set_epoch(1)
    assert sorted(map(tuple, sampler)) == sorted(map(tuple, batches)) and len(sampler) == len(batches)
    again = DynamicBatches(lengths, max_units=600, max_items=3, seed=0)
    assert list(again) == batches  # deterministic for (seed, epoch)
    with pytest.raises(ValueError, match="longer than max_units"):
        DynamicBatches([700], max_units=600, max_items=3, seed=0)


def test_tadicodec_mel_l1_script(capsys):
    sys.path.insert(0, str(RECIPES))
    try:
        from tadicodec_mel_l1 import main as mel_l1_main
    finally:
        sys.path.remove(str(RECIPES))
    mel_l1_main(["--model", "tadicodec-tiny", "--data", "fixtures", "--steps", "1"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["items"] == 2 and 0 < report["mel_l1"] < 10 and len(report["per_item"]) == 2


def test_reinitialize_parts_of_a_pretrained_model(tmp_path):
    """TaDiCodec's released recipe trains the codec from scratch around the pretrained vocoder."""
    from unitok.training.loop import build_model

    torch.manual_seed(3)
    source = unitok.create_model("tadicodec-tiny")
    source.save_pretrained(tmp_path / "base")
    config = load_config(RECIPES / "configs" / "tadicodec" / "tadicodec.yaml",
                         [f"model.pretrained={tmp_path / 'base'}", "model.reinitialize=[encoder, decoder]"])
    model = build_model(config)
    before, after = source.state_dict(), model.state_dict()
    for key in before:
        same = torch.equal(before[key], after[key])
        if key.startswith(("encoder.blocks", "decoder.blocks")) and key.endswith("wq.weight"):
            assert not same, key
        elif key.startswith(("vocoder.", "text_emb.", "vq_")):
            assert same, key
    fresh = unitok.create_model("tadicodec-tiny")
    assert abs(after["decoder.blocks.0.attn.wq.weight"].std() - fresh.state_dict()[
        "decoder.blocks.0.attn.wq.weight"].std()) < 0.005  # the model's own init (N(0, 0.02))
    with pytest.raises(ValueError, match="no submodule 'decodr'"):
        build_model(load_config(RECIPES / "configs" / "tadicodec" / "tadicodec.yaml",
                                [f"model.pretrained={tmp_path / 'base'}", "model.reinitialize=[decodr]"]))
    with pytest.raises(ConfigError, match="model.reinitialize"):
        load_config(RECIPES / "configs" / "tadicodec" / "tiny.yaml", ["model.reinitialize=[decoder]"])
