import math

import pytest
import torch
import transformers

import unitok
from tests.tokenizer_mixin import TokenizerTesterMixin
from unitok.models.tadicodec import (TaDiCodecFeatureExtractor, TaDiCodecProcessor, build_character_tokenizer,
                                     build_text_tokenizer)

RATE = 24000


def speech_like(batch: int, seconds: float = 1.3, seed: int = 0) -> torch.Tensor:
    """Harmonic tones with a moving pitch and an amplitude envelope (deterministic), in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * RATE)) / RATE
    waves = []
    for _ in range(batch):
        f0 = 110 + 80 * torch.rand(1, generator=generator)
        pitch = f0 * (1 + 0.2 * torch.sin(2 * math.pi * 1.5 * t))
        phase = 2 * math.pi * torch.cumsum(pitch, 0) / RATE
        wave = sum(torch.sin(k * phase) / k for k in range(1, 6)) * (0.5 + 0.5 * torch.sin(2 * math.pi * 3 * t)) ** 2
        waves.append(0.3 * wave + 0.01 * torch.randn(t.shape, generator=generator))
    return torch.stack(waves)


class TestTaDiCodec(TokenizerTesterMixin):
    variant = "tadicodec-tiny"
    # both per-batch dropout paths must fire within the gradient test's steps
    config_overrides = {"code_drop_prob": 0.5, "prompt_drop_prob": 0.5}
    decode_kwargs = {"num_inference_steps": 2}

    def make_inputs(self, batch_size):
        generator = torch.Generator().manual_seed(batch_size)
        return {"input_values": speech_like(batch_size), "attention_mask": torch.ones(batch_size, int(1.3 * RATE),
                                                                                      dtype=torch.long),
                "text_ids": torch.randint(1, 256, (batch_size, 6), generator=generator),
                "text_attention_mask": torch.ones(batch_size, 6, dtype=torch.long)}

    def decode_conditioning(self, inputs):
        return {"text_ids": inputs["text_ids"], "text_attention_mask": inputs["text_attention_mask"]}

    def bad_inputs(self):
        good = speech_like(2)
        return [
            ("no batch dim", {"input_values": good[0]}),
            ("channels dim", {"input_values": good[:, None]}),
            ("int16 samples", {"input_values": (good * 30000).to(torch.int16)}),
            ("NaN", {"input_values": torch.full_like(good, float("nan"))}),
            ("empty batch", {"input_values": good[:0]}),
            ("mask of another shape", {"input_values": good, "attention_mask": torch.ones(2, 10)}),
            ("not a tensor", {"input_values": good.numpy()}),
        ]

    # ------------------------------------------------------------------ TaDiCodec specifics
    def test_token_rate_and_lengths(self):
        model = self.make_model()
        assert model.config.tokens_per_second == 6.25 and model.codebook_size == 16384
        for samples, tokens in ((3840, 1), (3841, 2), (RATE, 7), (3840 * 5, 5)):
            out = model.encode(speech_like(1, samples / RATE))
            assert out.codes.shape == (1, tokens) and out.lengths.tolist() == [tokens], samples
            assert int(out.audio_lengths) == samples
            rec = model.decode(out.codes, text_ids=torch.ones(1, 3, dtype=torch.long), audio_lengths=out.audio_lengths,
                               num_inference_steps=1, generator=torch.Generator().manual_seed(0)).reconstruction
            assert rec.shape == (1, samples)  # padded to whole tokens, trimmed back

    def test_bsq_indices_are_msb_first(self):
        """codes = Σ_d bit_d · 2^(13−d), bit_d = [latent_d > 0]: computed here from the latents encode returns."""
        model = self.make_model()
        out = model.encode(speech_like(2))
        bits = (out.latents > 0).long()
        assert torch.allclose(out.latents.abs(), torch.full_like(out.latents, 1 / math.sqrt(14)))
        expected = (bits * torch.tensor([2 ** (13 - d) for d in range(14)])).sum(-1)
        assert torch.equal(out.codes, expected)
        one_hot_msb = model.quantizer.indices_to_codes(torch.tensor([8192]))  # only bit 0 set
        assert (one_hot_msb[0, 0] > 0) and (one_hot_msb[0, 1:] < 0).all()

    def test_items_encode_and_decode_alike_in_any_padded_batch(self):
        model = self.make_model()
        short, long = speech_like(1, 0.7, seed=1), speech_like(1, 1.3, seed=2)
        batch = torch.zeros(2, long.shape[1])
        batch[0, : short.shape[1]], batch[1] = short[0], long[0]
        mask = torch.zeros_like(batch, dtype=torch.long)
        mask[0, : short.shape[1]], mask[1] = 1, 1
        together = model.encode(batch, mask)
        alone = model.encode(short)
        n = int(alone.lengths)
        assert int(together.lengths[0]) == n and torch.equal(together.codes[0, :n], alone.codes[0])
        text = torch.randint(1, 256, (2, 5))
        kwargs = {"num_inference_steps": 2}
        generators = [torch.Generator().manual_seed(5), torch.Generator().manual_seed(6)]
        both = model.decode(together.codes, text_ids=text, lengths=together.lengths,
                            audio_lengths=together.audio_lengths, generator=generators, **kwargs)
        first = model.decode(alone.codes, text_ids=text[:1], audio_lengths=alone.audio_lengths,
                             generator=torch.Generator().manual_seed(5), **kwargs)
        length = int(alone.audio_lengths)
        assert int(both.lengths[0]) == length
        torch.testing.assert_close(both.reconstruction[0, :length], first.reconstruction[0], atol=1e-5, rtol=1e-4)

    def test_decoding_needs_the_transcript(self):
        model = self.make_model()
        codes = model.encode(speech_like(1)).codes
        with pytest.raises(ValueError, match="transcript"):
            model.decode(codes)
        out = model.decode(codes, text="hello there", num_inference_steps=1, generator=torch.Generator().manual_seed(0))
        assert out.reconstruction.shape == (1, codes.shape[1] * 3840)  # the tiny variant's character tokenizer
        model.text_tokenizer = build_text_tokenizer(["hello there", "general kenobi"], vocab_size=64)
        assert model.text_tokenizer("hello").input_ids != build_character_tokenizer("abc")("hello").input_ids
        released = unitok.create_model("tadicodec-tiny", text_alphabet=None)  # no tokenizer until one is attached
        with pytest.raises(ValueError, match="text tokenizer"):
            released.decode(codes, text=["hello"])
        with pytest.raises(ValueError, match="text_ids holds ids outside|outside the codebook"):
            model.decode(codes, text_ids=torch.full((1, 3), 256), num_inference_steps=1)

    def test_voice_prompt_is_a_clean_prefix(self):
        model = self.make_model()
        target, prompt = speech_like(1, 1.0, seed=3), speech_like(1, 0.5, seed=4)
        codes = model.encode(target).codes
        text = torch.randint(1, 256, (1, 8))
        kwargs = dict(text_ids=text, num_inference_steps=2)
        a = model.decode(codes, prompt_values=prompt, generator=torch.Generator().manual_seed(0), **kwargs)
        b = model.decode(codes, prompt_values=prompt, generator=torch.Generator().manual_seed(0), **kwargs)
        plain = model.decode(codes, generator=torch.Generator().manual_seed(0), **kwargs)
        assert torch.equal(a.reconstruction, b.reconstruction)
        assert a.reconstruction.shape == plain.reconstruction.shape == (1, codes.shape[1] * 3840)
        assert not torch.allclose(a.reconstruction, plain.reconstruction)

    def test_guidance_matches_the_released_formula(self):
        """CFG on (text, codes) vs (no text, zero codes), then std rescale 0.75, recomputed here for one step."""
        model = self.make_model()
        codes = model.encode(speech_like(1, 0.5)).codes
        text = torch.randint(1, 256, (1, 4))
        mel = model.decode(codes, text_ids=text, num_inference_steps=1, guidance_scale=3.0,
                           generator=torch.Generator().manual_seed(0), vocode=False).mel
        noise = torch.randn(1, codes.shape[1] * 8, 128, generator=torch.Generator().manual_seed(0))
        cond = model.vq_out_linear(model.quantizer.indices_to_codes(codes))
        cond = torch.nn.functional.interpolate(cond.transpose(1, 2), scale_factor=8, mode="linear").transpose(1, 2)
        mask = torch.ones(1, noise.shape[1], dtype=torch.bool)
        t = torch.tensor([0.5])
        with torch.no_grad():
            v_c = model.decoder(noise, mask, cond=cond, t=t, text=model.text_emb(text),
                                text_mask=torch.ones_like(text, dtype=torch.bool))
            v_u = model.decoder(noise, mask, cond=torch.zeros_like(cond), t=t)
        guided = v_u + 3.0 * (v_c - v_u)
        guided = 0.75 * guided * (v_c.std() / guided.std()) + 0.25 * guided
        torch.testing.assert_close(mel.transpose(1, 2), noise + guided, atol=1e-5, rtol=1e-4)

    def test_flow_loss_matches_the_released_definition(self):
        """No prompt, no dropout: x_t = (1 − (1 − σ)t)z + t·x, loss = masked mean over frames of the L1 distance to
        x − (1 − σ)z averaged over mel bins; recomputed here from the same random draws."""
        model = self.make_model(code_drop_prob=0.0, prompt_drop_prob=1.0, entropy_loss_weight=0.0).train()
        inputs = self.make_inputs(1)
        out = model(**inputs, generator=torch.Generator().manual_seed(0))
        assert torch.allclose(out.loss, out.flow_loss)
        generator = torch.Generator().manual_seed(0)
        audio = torch.nn.functional.pad(inputs["input_values"], (0, 3840 * 9 - inputs["input_values"].shape[1]))
        with torch.no_grad():
            mel = model.mel(audio).transpose(1, 2)
            t = torch.rand(1, generator=generator).clamp(1e-5, 1)
            z = torch.randn(mel.shape, generator=generator)
            codes = model.encode(**inputs).latents
            cond = model.vq_out_linear(codes)
            cond = torch.nn.functional.interpolate(cond.transpose(1, 2), scale_factor=8, mode="linear").transpose(1, 2)
            x_t = (1 - (1 - 1e-5) * t) * z + t * mel
            v = model.decoder(x_t, torch.ones(1, mel.shape[1], dtype=torch.bool), cond=cond, t=t,
                              text=model.text_emb(inputs["text_ids"]), text_mask=inputs["text_attention_mask"].bool())
            expected = (v - (mel - (1 - 1e-5) * z)).abs().mean()
        torch.testing.assert_close(out.flow_loss.detach(), expected, atol=1e-5, rtol=1e-5)

    def test_released_parameter_count(self):
        with torch.device("meta"):
            model = unitok.create_model("tadicodec")
        codec = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("vocoder."))
        vocoder = sum(p.numel() for p in model.vocoder.parameters())
        d, h = 1024, 4096
        block = 4 * d * d + 3 * d * h
        adaptive = d * d + d
        mlp = d * h + h + h * d + d
        expected_codec = (128 * d + d) + 8 * block + (d * 14 + 14) + (14 * d + d) + 32100 * d + \
            (128 * d + d) + 16 * (block + 2 * adaptive) + adaptive + 3 * mlp + (d * 128 + 128)
        assert codec == expected_codec
        assert vocoder == 255_042_434
        print(f"tadicodec: codec {codec / 1e6:.2f} M + vocoder {vocoder / 1e6:.2f} M = {(codec + vocoder) / 1e6:.2f} M")

    def test_registered_with_the_audio_auto_classes(self, tmp_path):
        model = self.make_model()
        assert isinstance(model, transformers.modeling_utils.PreTrainedAudioTokenizerBase)
        model.save_pretrained(tmp_path)
        loaded = transformers.AutoModelForAudioTokenization.from_pretrained(tmp_path)
        assert type(loaded) is type(model)
        extractor = transformers.AutoFeatureExtractor.from_pretrained(tmp_path)
        assert isinstance(extractor, TaDiCodecFeatureExtractor)
        features = extractor(speech_like(1, 0.5, seed=1)[0].numpy(), sampling_rate=16000)
        assert features["input_values"].shape[1] % 3840 == 0
        processor = transformers.AutoProcessor.from_pretrained(tmp_path)
        assert isinstance(processor, TaDiCodecProcessor)
        batch = processor(audio=speech_like(1, 0.5)[0].numpy(), text="hello there", sampling_rate=RATE)
        codes = loaded.encode(batch["input_values"], batch["attention_mask"]).codes
        assert codes.shape == (1, 4)  # 12,000 samples → 4 tokens of 3,840
        assert batch["text_ids"].max() < model.config.text_vocab_size
