"""Checks every unitok tokenizer must pass. A model's test class subclasses `TokenizerTesterMixin` and provides
the small hooks at the top; the tests go through the public API the way a user would."""

import json
import math

import pytest
import torch
import transformers

import unitok
from unitok.outputs import TokenizerDecoderOutput, TokenizerEncoderOutput, TokenizerOutput


def decode_with_seed(model, codes, seed, **kwargs):
    return model.decode(codes, generator=torch.Generator().manual_seed(seed), **kwargs).reconstruction


class TokenizerTesterMixin:
    variant: str  # a registered tiny variant
    config_overrides: dict = {}
    decode_kwargs: dict = {}  # e.g. few sampling steps
    training_steps: int = 8  # optimiser steps in the loss-decrease test
    training_lr: float = 3e-3

    # ------------------------------------------------------------------ hooks
    def make_inputs(self, batch_size: int) -> dict:
        raise NotImplementedError

    def bad_inputs(self) -> list[tuple[str, dict]]:
        """(description, encode kwargs) that must raise ValueError."""
        raise NotImplementedError

    def decode_conditioning(self, inputs: dict) -> dict:
        """Decode keyword arguments that come with a batch of inputs (e.g. the transcripts of speech); they are
        sliced with the inputs in the batch-equivalence test."""
        return {}

    def decoding(self, inputs: dict) -> dict:
        return {**self.decode_kwargs, **self.decode_conditioning(inputs)}

    def bad_codes(self, good_codes: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        size = self.make_model().codebook_size
        return [
            ("above the codebook", torch.full_like(good_codes, size)),
            ("negative", torch.full_like(good_codes, -1)),
            ("float dtype", good_codes.float()),
            ("missing batch dim", good_codes[0]),
            ("empty batch", good_codes[:0]),
        ]

    # ------------------------------------------------------------------ helpers
    def make_model(self, **overrides):
        torch.manual_seed(0)
        return unitok.create_model(self.variant, **{**self.config_overrides, **overrides}).eval()

    def make_trained_like_model(self):
        """The tiny model with its zero-initialised tensors (adaLN-zero gates, zero heads) filled with small noise,
        as after training, so every path carries signal (LoRA on a gated-off block would get no gradient)."""
        model = self.make_model()
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for param in model.parameters():
                if param.is_floating_point() and not param.any():
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
        return model

    def train_on_fixed_batch(self, model, inputs) -> tuple[float, float]:
        """(loss before, loss after) `training_steps` Adam steps on one batch, the noise fixed by a seeded generator."""
        model.train()

        def loss():
            return model(**inputs, generator=torch.Generator().manual_seed(0)).loss

        initial = loss().item()
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=self.training_lr)
        for _ in range(self.training_steps):
            optimizer.zero_grad()
            loss().backward()
            optimizer.step()
        return initial, loss().item()

    def encode(self, model, inputs):
        with torch.no_grad():
            return model.encode(**inputs)

    # ------------------------------------------------------------------ contract
    def test_contract_attributes(self):
        model = self.make_model()
        assert model.config.model_type.startswith("unitok_")
        assert model.modality in unitok.MODALITIES
        assert type(model.config).modality == model.modality
        assert self.variant in unitok.list_models(modality=model.modality)

    def test_output_types_and_shapes(self):
        model = self.make_model()
        inputs = self.make_inputs(2)
        encoded = self.encode(model, inputs)
        assert isinstance(encoded, TokenizerEncoderOutput)
        assert encoded.codes is not None or encoded.latents is not None
        if encoded.codes is not None:
            assert encoded.codes.dtype == torch.long and encoded.codes.shape[0] == 2
            assert 0 <= encoded.codes.min() and encoded.codes.max() < model.codebook_size
        decoded = model.decode(encoded.codes, generator=torch.Generator().manual_seed(0), **self.decoding(inputs))
        assert isinstance(decoded, TokenizerDecoderOutput)
        assert decoded.reconstruction.shape[0] == 2 and torch.isfinite(decoded.reconstruction).all()
        model.train()
        output = model(**self.make_inputs(2), generator=torch.Generator().manual_seed(0))
        assert isinstance(output, TokenizerOutput)
        assert list(output.keys())[0] == "loss" and output.loss.ndim == 0
        assert output.loss_terms(), "forward must report its loss terms as `<name>_loss` fields"

    def test_save_load_round_trip(self, tmp_path):
        model = self.make_model()
        inputs = self.make_inputs(2)
        codes = self.encode(model, inputs).codes
        reference = decode_with_seed(model, codes, 3, **self.decoding(inputs))
        model.save_pretrained(tmp_path)
        assert (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.bin"))
        config = transformers.AutoConfig.from_pretrained(tmp_path)
        assert config.model_type == model.config.model_type and "AutoModel" in config.auto_map
        for loaded in (transformers.AutoModel.from_pretrained(tmp_path), unitok.AutoTokenizer.from_pretrained(tmp_path)):
            assert type(loaded) is type(model)
            loaded.eval()
            state, loaded_state = model.state_dict(), loaded.state_dict()
            assert state.keys() == loaded_state.keys()
            assert all(torch.equal(state[k], loaded_state[k]) for k in state)
            assert all(torch.equal(a, b) for a, b in zip(model.buffers(), loaded.buffers()))
            assert torch.equal(self.encode(loaded, inputs).codes, codes)
            assert torch.equal(decode_with_seed(loaded, codes, 3, **self.decoding(inputs)), reference)

    def test_remote_code_without_unitok(self, tmp_path):
        """`save_pretrained` output loads with `trust_remote_code=True` in a process where unitok cannot be imported
        and gives identical codes and reconstructions; the remote code saves itself again."""
        from safetensors.torch import load_file, save_file

        from tests.isolation import run_python

        model = self.make_model()
        folder = tmp_path / "model"
        model.save_pretrained(folder)
        config = json.loads((folder / "config.json").read_text())
        assert set(config["auto_map"]) >= {"AutoConfig", "AutoModel"}
        for file in folder.glob("*.py"):
            source = file.read_text()
            assert "import unitok" not in source and "from unitok" not in source and "from .." not in source, file
        inputs = self.make_inputs(2)
        codes = self.encode(model, inputs).codes
        reference = decode_with_seed(model, codes, 0, **self.decoding(inputs))
        conditioning = self.decode_conditioning(inputs)
        save_file({**{f"in.{k}": v.clone() for k, v in inputs.items()},
                   **{f"cond.{k}": v.clone() for k, v in conditioning.items()}}, tmp_path / "inputs.safetensors")
        result = run_python(f"""
            import json, torch, transformers
            from safetensors.torch import load_file, save_file
            try:
                import unitok
                raise SystemExit("unitok should not be importable here")
            except ImportError:
                pass
            try:
                transformers.AutoModel.from_pretrained("{folder}")
                raise SystemExit("loading without trust_remote_code should fail")
            except ValueError:
                pass
            model = transformers.AutoModel.from_pretrained("{folder}", trust_remote_code=True).eval()
            assert "transformers_modules" in type(model).__module__, type(model).__module__
            processor = transformers.AutoProcessor.from_pretrained("{folder}", trust_remote_code=True)
            tensors = load_file("inputs.safetensors")
            inputs = {{k[3:]: v for k, v in tensors.items() if k.startswith("in.")}}
            conditioning = {{k[5:]: v for k, v in tensors.items() if k.startswith("cond.")}}
            with torch.no_grad():
                codes = model.encode(**inputs).codes
            kwargs = json.loads('{json.dumps(self.decode_kwargs)}')
            rec = model.decode(codes, generator=torch.Generator().manual_seed(0), **kwargs, **conditioning)
            rec = rec.reconstruction
            save_file({{"codes": codes, "reconstruction": rec}}, "outputs.safetensors")
            model.save_pretrained("resaved")  # remote code can save itself again
            print(type(processor).__name__)
        """, tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.strip().endswith(type(model.build_preprocessor()).__name__), result.stdout[-500:]
        outputs = load_file(tmp_path / "outputs.safetensors")
        assert torch.equal(outputs["codes"], codes)
        assert torch.equal(outputs["reconstruction"], reference)
        assert sorted(p.name for p in (tmp_path / "resaved").iterdir()) == sorted(p.name for p in folder.iterdir())

    def test_hub_round_trip(self, hub_server, tmp_path):
        """Published with `unitok.hub_upload` (git transport) into a local Hub server, then loaded by repo id with
        transformers' Auto classes and `unitok.AutoTokenizer`: identical codes and reconstructions."""
        from unitok.hub_upload import GitTransport, push, stage

        model = self.make_model()
        repo = f"org/{self.variant}-mixin"
        staged = stage(model, repo, tmp_path / "staged", random_weights=True)
        sha = push(staged, transport=GitTransport(hub_server.repo_path(repo))).commit
        inputs = self.make_inputs(2)
        expected = self.encode(model, inputs)
        reference = decode_with_seed(model, expected.codes, 0, **self.decoding(inputs))
        auto_class = transformers.AutoModelForAudioTokenization if model.modality == "audio" else transformers.AutoModel
        for loaded in (auto_class.from_pretrained(repo, revision=sha), unitok.AutoTokenizer.from_pretrained(
                repo, revision=sha)):
            assert type(loaded) is type(model)
            encoded = self.encode(loaded.eval(), inputs)
            assert torch.equal(encoded.codes, expected.codes)
            assert torch.equal(decode_with_seed(loaded, encoded.codes, 0, **self.decoding(inputs)), reference)
        if model.build_preprocessor() is not None:
            processor = transformers.AutoProcessor.from_pretrained(repo, revision=sha)
            assert type(processor) is type(model.build_preprocessor())

    def test_lora_default_preset(self, tmp_path):
        """Decoder-only LoRA (the default preset): no-op at init, only LoRA trains, the loss drops, codes stay the
        same, save → load reproduces outputs exactly and merging within float tolerance."""
        base = self.make_trained_like_model()
        inputs = self.make_inputs(2)
        codes = self.encode(base, inputs).codes
        reference = decode_with_seed(base, codes, 0, **self.decoding(inputs))
        model = unitok.lora.apply(self.make_trained_like_model(), r=4, base_model_name_or_path=f"org/{self.variant}")
        assert torch.equal(decode_with_seed(model, codes, 0, **self.decoding(inputs)), reference)
        trainable, total = unitok.lora.trainable_parameters(model)
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        assert names and all(".lora_A." in n or ".lora_B." in n for n in names), names[:5]
        print(f"{self.variant}: {trainable:,} of {total:,} parameters trainable with the default LoRA preset")

        initial, final = self.train_on_fixed_batch(model, inputs)
        assert final < initial, (initial, final)
        model.eval()
        assert torch.equal(self.encode(model, inputs).codes, codes)  # decoder-only: the code space is unchanged
        adapted = decode_with_seed(model, codes, 0, **self.decoding(inputs))
        assert not torch.equal(adapted, reference)

        unitok.lora.save_adapter(model, tmp_path / "adapter")
        assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())[
            "base_model_name_or_path"] == f"org/{self.variant}"
        assert json.loads((tmp_path / "adapter" / "unitok_adapter.json").read_text())["changes_codes"] is False
        loaded = unitok.lora.load_adapter(self.make_trained_like_model(), tmp_path / "adapter").eval()
        assert torch.equal(decode_with_seed(loaded, codes, 0, **self.decoding(inputs)), adapted)
        merged = unitok.lora.merge(loaded)
        assert type(merged) is type(base)
        torch.testing.assert_close(decode_with_seed(merged, codes, 0, **self.decoding(inputs)), adapted,
                                   atol=1e-4, rtol=1e-4)
        merged.save_pretrained(tmp_path / "merged")
        reloaded = unitok.AutoTokenizer.from_pretrained(tmp_path / "merged").eval()
        torch.testing.assert_close(decode_with_seed(reloaded, codes, 0, **self.decoding(inputs)), adapted,
                                   atol=1e-4, rtol=1e-4)

    def test_lora_presets_and_bad_targets(self):
        model = self.make_model()
        presets = unitok.lora.presets(model)
        assert unitok.lora.DEFAULT_PRESET in presets and not presets[unitok.lora.DEFAULT_PRESET]["changes_codes"]
        for name, spec in presets.items():  # every preset names real modules LoRA can adapt
            adapted = unitok.lora.apply(self.make_model(), name, r=2) if not spec["changes_codes"] else None
            if spec["changes_codes"]:
                with pytest.warns(UserWarning, match="codes produced before and after"):
                    adapted = unitok.lora.apply(self.make_model(), name, r=2)
            assert adapted.unitok_lora["adapted_modules"] > 0, name
        with pytest.raises(ValueError, match="Unknown LoRA preset 'nope'"):
            unitok.lora.apply(model, "nope")
        with pytest.raises(ValueError, match="matches no module"):
            unitok.lora.apply(model, target_modules=r"no\.such\.layer")

    def test_from_pretrained_with_only_a_config_initialises_every_tensor(self):
        """transformers 5 builds on the meta device and fills only missing tensors: derived buffers must be rebuilt."""
        config = unitok.create_config(self.variant, **self.config_overrides)
        cls = type(self.make_model())
        torch.manual_seed(0)
        fresh = cls(config)
        loaded = cls.from_pretrained(None, config=config, state_dict={})
        for name, buffer in fresh.named_buffers():
            loaded_buffer = loaded.get_buffer(name)
            assert loaded_buffer.device.type != "meta", name
            assert torch.equal(buffer, loaded_buffer), f"buffer {name} differs after meta-device init"
        for name, param in loaded.named_parameters():
            assert param.device.type != "meta" and torch.isfinite(param).all(), name

    def test_determinism(self):
        model = self.make_model()
        inputs = self.make_inputs(2)
        first, second = self.encode(model, inputs), self.encode(model, inputs)
        assert torch.equal(first.codes, second.codes)
        a = decode_with_seed(model, first.codes, 7, **self.decoding(inputs))
        b = decode_with_seed(model, first.codes, 7, **self.decoding(inputs))
        assert torch.equal(a, b)

    def test_batch_equivalence(self):
        model = self.make_model()
        inputs = self.make_inputs(3)
        batched = self.encode(model, inputs).codes
        for i in range(3):
            alone = self.encode(model, {k: v[i : i + 1] for k, v in inputs.items()}).codes
            assert torch.equal(alone, batched[i : i + 1])
        generators = [torch.Generator().manual_seed(10 + i) for i in range(3)]
        together = model.decode(batched, generator=generators, **self.decoding(inputs)).reconstruction
        for i in range(3):
            alone = decode_with_seed(model, batched[i : i + 1], 10 + i,
                                     **self.decoding({k: v[i : i + 1] for k, v in inputs.items()}))
            torch.testing.assert_close(alone, together[i : i + 1], atol=1e-4, rtol=1e-4)

    def test_training_lowers_loss_on_a_fixed_batch(self):
        initial, final = self.train_on_fixed_batch(self.make_model(), self.make_inputs(2))
        assert math.isfinite(final) and final < 0.9 * initial, (initial, final)

    def test_every_trainable_parameter_gets_a_gradient(self):
        """Every trainable tensor receives a non-zero gradient within a few steps (zero-initialised heads and
        adaLN-zero block gradients at step 0; random dropout paths fire on some steps only)."""
        model = self.make_model().train()
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=self.training_lr)
        reached = set()
        for step in range(self.training_steps):
            optimizer.zero_grad()
            model(**self.make_inputs(4), generator=torch.Generator().manual_seed(step)).loss.backward()
            reached |= {n for n, p in model.named_parameters() if p.grad is not None and p.grad.any()}
            optimizer.step()
        silent = [n for n, p in model.named_parameters() if p.requires_grad and n not in reached]
        assert not silent, f"parameters without gradient: {silent}"

    def test_gradient_checkpointing_gives_the_same_gradients(self):
        model = self.make_model().train()
        inputs = self.make_inputs(2)

        def grads():
            model.zero_grad()
            model(**inputs, generator=torch.Generator().manual_seed(0)).loss.backward()
            return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

        plain = grads()
        enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        enable()
        checkpointed = grads()
        assert plain.keys() == checkpointed.keys()
        for name in plain:
            torch.testing.assert_close(plain[name], checkpointed[name], atol=1e-5, rtol=1e-4)

    def test_bad_inputs_raise_value_error(self):
        model = self.make_model()
        for description, kwargs in self.bad_inputs():
            with pytest.raises(ValueError):
                model.encode(**kwargs)
            with pytest.raises(ValueError):
                model(**kwargs)
        inputs = self.make_inputs(1)
        codes = self.encode(model, inputs).codes
        for description, codes_bad in self.bad_codes(codes):
            with pytest.raises(ValueError):
                model.decode(codes_bad, **self.decoding(inputs))
