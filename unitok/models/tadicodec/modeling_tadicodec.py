"""TaDiCodec: text-aware diffusion speech tokenizer (arXiv 2508.16790), faithful to the released model.

    features = processor(audio=waveforms, text=transcripts, sampling_rate=16000, return_tensors="pt")
    codes = model.encode(features.input_values, features.attention_mask).codes        # (batch, tokens) at 6.25 Hz
    audio = model.decode(codes, text_ids=features.text_ids, generator=g).reconstruction  # (batch, samples) 24 kHz

Audio is padded to a multiple of 3,840 samples (one token); reconstructions are trimmed back to the input length
when `audio_lengths` are given. Decoding needs the transcript (the released decoder was trained with text always
present); a voice prompt (its audio and transcript prefix) sets the speaker.

Parity with the released code (checked numerically against its modules with transformers 4.42 semantics): identical
for audio whose length is a multiple of 3,840 samples and items decoded one at a time. Two deliberate differences:
other lengths are padded to whole tokens (the released encoder interpolates T frames to T // 8 tokens, which shifts
every token's sampling grid by a fraction of a frame), and a voice prompt is encoded on its own and its codes put
before the target's (the released pipeline encodes prompt and target audio together, so the encoder attends across
the boundary).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.models.embeddings import get_timestep_embedding
from torch import nn
from torch.nn import init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import PreTrainedAudioTokenizerBase

from ...layers.attention import Attention
from ...layers.embeddings import RotaryEmbedding
from ...layers.mel import LogMelSpectrogram
from ...layers.norms import AdaptiveRMSNorm, Fp32RMSNorm
from ...layers.quantizers.bsq import BinarySphericalQuantizer
from ...layers.transformer import SwiGLU
from ...modeling_base import UnitokPreTrainedModel, block_lora_presets
from ...outputs import TokenizerDecoderOutput, TokenizerEncoderOutput, TokenizerOutput
from ...validation import check_codes, check_tensor
from .configuration_tadicodec import TaDiCodecConfig
from .feature_extraction_tadicodec import TaDiCodecFeatureExtractor
from .processing_tadicodec import TaDiCodecProcessor
from .text_tokenizer_tadicodec import build_character_tokenizer
from .vocos_tadicodec import VocosVocoder


@dataclass
class TaDiCodecEncoderOutput(TokenizerEncoderOutput):
    """`codes` (batch, tokens); `latents` the BSQ codes (batch, tokens, vq_dim) in {±1/sqrt(vq_dim)};
    `lengths` valid tokens per item; `attention_mask` (batch, tokens); `audio_lengths` input samples per item."""

    audio_lengths: torch.LongTensor | None = None


@dataclass
class TaDiCodecDecoderOutput(TokenizerDecoderOutput):
    """`reconstruction` (batch, samples) at 24 kHz; `lengths` valid samples; `mel` the generated normalised log-mel
    (batch, n_mels, frames)."""

    mel: torch.FloatTensor | None = None


@dataclass
class TaDiCodecOutput(TokenizerOutput):
    """Training loss = masked L1 flow loss + BSQ entropy penalty; `commitment` is logged, not weighted (as released)."""

    flow_loss: torch.FloatTensor | None = None
    entropy_loss: torch.FloatTensor | None = None
    commitment: torch.FloatTensor | None = None


class LlamaNARBlock(GradientCheckpointingLayer):
    """LLaMA block without causality: `x + attn(norm1 x)`, `x + mlp(norm2 x)`, RoPE, SwiGLU, bias-free projections.
    Norms are parameter-free RMSNorms, or (decoder) scale-only adaptive RMSNorms driven by the flow time."""

    def __init__(self, config: TaDiCodecConfig, conditioned: bool):
        super().__init__()
        dim, eps = config.hidden_size, config.rms_norm_eps
        self.conditioned = conditioned
        make = (lambda: AdaptiveRMSNorm(dim, dim, eps)) if conditioned else (lambda: Fp32RMSNorm(
            dim, eps=eps, elementwise_affine=False))
        self.norm1, self.norm2 = make(), make()
        self.attn = Attention(dim, config.num_heads)
        self.mlp = SwiGLU(dim, config.intermediate_size)

    def _norm(self, norm, x, cond):
        return norm(x, cond) if self.conditioned else norm(x)

    def forward(self, x, attn_mask, rotary, cond=None):
        x = x + self.attn(self._norm(self.norm1, x, cond), attn_mask, rotary)
        return x + self.mlp(self._norm(self.norm2, x, cond))


class TaDiCodecTransformer(nn.Module):
    """The released `DiffLlamaPrefix`: `in_linear`, LLaMA-NAR blocks over `[text prefix | frames]` with full
    (padding-masked) attention and one RoPE position range, final norm, optional `out_linear`.

    The decoder adds `cond_mlp(code embedding)` to the projected frames, prepends `text_mlp(text embedding)`,
    and conditions every norm on `diff_step_mlp(sinusoidal(t))`.
    """

    def __init__(self, config: TaDiCodecConfig, num_layers: int, *, decoder: bool):
        super().__init__()
        dim, hidden = config.hidden_size, 4 * config.hidden_size
        self.decoder = decoder
        self.in_linear = nn.Linear(config.n_mels, dim)
        self.blocks = nn.ModuleList(LlamaNARBlock(config, conditioned=decoder) for _ in range(num_layers))
        self.final_norm = AdaptiveRMSNorm(dim, dim, config.rms_norm_eps) if decoder else Fp32RMSNorm(
            dim, eps=config.rms_norm_eps, elementwise_affine=False)
        self.rotary = RotaryEmbedding(dim // config.num_heads, config.rope_max_positions, config.rope_theta)
        if decoder:
            def mlp():
                return nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, dim))

            self.cond_mlp, self.text_mlp, self.diff_step_mlp = mlp(), mlp(), mlp()
            self.out_linear = nn.Linear(dim, config.n_mels)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, *, cond: torch.Tensor | None = None,
                t: torch.Tensor | None = None, text: torch.Tensor | None = None,
                text_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, n_mels), x_mask (B, T) bool, cond (B, T, dim), t (B,), text (B, L, dim) → (B, T, dim | n_mels)."""
        h = self.in_linear(x)
        time = None
        if self.decoder:
            h = h + self.cond_mlp(cond)
            time = self.diff_step_mlp(get_timestep_embedding(t, h.shape[-1], flip_sin_to_cos=False,
                                                             downscale_freq_shift=1).to(h.dtype))
        prefix = 0
        if text is not None:
            prefix = text.shape[1]
            h = torch.cat([self.text_mlp(text), h], dim=1)
            x_mask = torch.cat([text_mask, x_mask], dim=1)
        attn_mask = x_mask[:, None, None, :]  # keys only: every position sees every valid position
        rotary = self.rotary(h.shape[1])
        for block in self.blocks:
            h = block(h, attn_mask, rotary, time)
        h = self.final_norm(h, time) if self.decoder else self.final_norm(h)
        h = h[:, prefix:]
        return self.out_linear(h) if self.decoder else h


def _upsample_codes(embedding: torch.Tensor, lengths: torch.Tensor, factor: int) -> torch.Tensor:
    """(B, N, C) → (B, N·factor, C) by linear interpolation (align_corners=False), each item on its own valid
    tokens: padding positions repeat the last valid token first, so an item decodes the same in any batch."""
    positions = torch.arange(embedding.shape[1], device=embedding.device)
    last = (lengths - 1).clamp(min=0)[:, None]
    index = torch.minimum(positions[None], last)
    embedding = embedding.gather(1, index[..., None].expand(-1, -1, embedding.shape[-1]))
    return F.interpolate(embedding.transpose(1, 2), scale_factor=factor, mode="linear").transpose(1, 2)


def _masked_std(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unbiased std of each item of (B, T, C) over its valid frames (mask (B, T)), shape (B, 1, 1)."""
    weight = mask[..., None].to(x.dtype).expand_as(x)
    count = weight.flatten(1).sum(1).clamp_min(2)
    mean = (x * weight).flatten(1).sum(1) / count
    var = (((x - mean.view(-1, 1, 1)) ** 2) * weight).flatten(1).sum(1) / (count - 1)
    return var.sqrt().view(-1, 1, 1)


class TaDiCodecPreTrainedModel(UnitokPreTrainedModel, PreTrainedAudioTokenizerBase):
    config: TaDiCodecConfig
    config_class = TaDiCodecConfig
    base_model_prefix = "tadicodec"
    main_input_name = "input_values"
    input_modalities = ("audio",)
    modality = "audio"
    remote_auto_classes = ("AutoModel", "AutoModelForAudioTokenization")
    _no_split_modules = ["LlamaNARBlock"]
    # LoRA targets for `unitok.lora`: "decoder" (the flow decoder's attention and MLP) keeps codes valid.
    lora_presets = block_lora_presets()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The released init as it actually runs: N(0, 0.02) Linears/Embeddings/Convs with zero bias, the adaptive
        norms' gain Linears included. (The released norm asks for weight 0 / bias 1, but transformers' `post_init`
        re-initialises that child Linear afterwards, so trained-from-scratch models started from N(0, 0.02).)
        The frozen vocoder keeps PyTorch's defaults: it is loaded, not trained here."""
        super()._init_weights(module)
        if isinstance(module, (nn.Linear, nn.Embedding)) and not self._in_vocoder(module):
            init.normal_(module.weight, std=self.config.initializer_range)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)

    def _in_vocoder(self, module: nn.Module) -> bool:
        vocoder = getattr(self, "vocoder", None)
        return vocoder is not None and any(module is m for m in vocoder.modules())


class TaDiCodecModel(TaDiCodecPreTrainedModel):
    """TaDiCodec tokenizer with its Vocos vocoder.

    - `encode(input_values, attention_mask=None)` → `codes` (batch, tokens) in [0, 16384), 6.25 tokens/s.
    - `decode(codes, text_ids=..., prompt_values=None, generator=..., num_inference_steps=32, guidance_scale=2.0)`
      → 24 kHz `reconstruction` (batch, samples).
    - `forward(input_values, text_ids=..., ...)` → masked L1 flow-matching loss + BSQ entropy penalty.
    """

    def __init__(self, config: TaDiCodecConfig):
        super().__init__(config)
        self.mel = LogMelSpectrogram(sample_rate=config.sampling_rate, n_fft=config.n_fft,
                                     win_length=config.win_length, hop_length=config.hop_length,
                                     n_mels=config.n_mels, f_min=config.f_min, f_max=config.f_max,
                                     mean=config.mel_mean, var=config.mel_var)
        self.encoder = TaDiCodecTransformer(config, config.encoder_layers, decoder=False)
        self.vq_in_linear = nn.Linear(config.hidden_size, config.vq_dim)
        self.quantizer = BinarySphericalQuantizer(
            config.vq_dim, entropy_loss_weight=config.entropy_loss_weight,
            commitment_loss_weight=config.commitment_loss_weight, gamma0=config.gamma0, gamma=config.gamma,
            inv_temperature=config.inv_temperature, group_size=1)
        self.vq_out_linear = nn.Linear(config.vq_dim, config.hidden_size)
        self.text_emb = nn.Embedding(config.text_vocab_size, config.hidden_size)
        self.decoder = TaDiCodecTransformer(config, config.decoder_layers, decoder=True)
        self.vocoder = VocosVocoder(input_channels=config.n_mels, dim=config.vocoder_dim,
                                    intermediate_dim=config.vocoder_intermediate_dim,
                                    num_layers=config.vocoder_layers, n_fft=config.n_fft,
                                    hop_length=config.hop_length, padding="same")
        self.post_init()
        self.vocoder.requires_grad_(False)  # trained separately (as released); loaded from the vocoder checkpoint

    def build_preprocessor(self):
        """The processor (feature extractor: any sampling rate → 24 kHz mono padded to whole tokens; plus the text
        tokenizer), or the feature extractor alone when the model has no text tokenizer yet."""
        extractor = TaDiCodecFeatureExtractor(sampling_rate=self.config.sampling_rate,
                                              pad_to_multiple_of=self.config.samples_per_token)
        tokenizer = self.text_tokenizer
        return extractor if tokenizer is None else TaDiCodecProcessor(extractor, tokenizer)

    # ------------------------------------------------------------------ helpers
    def _audio(self, input_values, attention_mask, name: str = "input_values"):
        """Validated (B, T) float audio, padded to a multiple of one token; per-item valid sample counts."""
        input_values = check_tensor(input_values, name, ndim=2, shape_doc="(batch, samples) 24 kHz mono",
                                    floating=True)
        batch, length = input_values.shape
        if attention_mask is None:
            lengths = torch.full((batch,), length, dtype=torch.long, device=input_values.device)
        else:
            if attention_mask.shape != input_values.shape:
                raise ValueError(f"attention_mask must have the shape of {name} {tuple(input_values.shape)}, got "
                                 f"{tuple(attention_mask.shape)}.")
            lengths = attention_mask.long().sum(-1)
            input_values = input_values * attention_mask.to(input_values.dtype)
        if (lengths < 1).any():
            raise ValueError(f"Every item of {name} needs at least one sample.")
        step = self.config.samples_per_token
        padded = -(-length // step) * step
        input_values = F.pad(input_values, (0, padded - length))
        return input_values, lengths

    def _frame_mask(self, token_lengths: torch.Tensor, num_tokens: int) -> torch.Tensor:
        frames = token_lengths * self.config.down_sample_factor
        return torch.arange(num_tokens * self.config.down_sample_factor, device=frames.device)[None] < frames[:, None]

    def _mel(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T) → normalised log-mel (B, frames, n_mels)."""
        return self.mel(audio.float()).transpose(1, 2)

    def _quantize(self, mel: torch.Tensor, frame_mask: torch.Tensor):
        """Encoder → linear-interpolation ×1/8 (exactly local: each token reads frames 8j+3, 8j+4) → 14-d unit
        vectors → BSQ. Returns (quantizer output, unit vectors)."""
        hidden = self.encoder(mel, frame_mask)
        down = F.interpolate(hidden.transpose(1, 2), size=hidden.shape[1] // self.config.down_sample_factor,
                             mode="linear").transpose(1, 2)
        unit = F.normalize(self.vq_in_linear(down), dim=-1)
        return self.quantizer(unit), unit

    def _scaled_codes(self, unit: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """The released straight-through estimator: `(u + (sign(u) − u).detach()) · s` (gradient scaled by s)."""
        scale = self.quantizer.code_scale
        return unit * scale + (codes - unit * scale).detach()

    # ------------------------------------------------------------------ contract
    def encode(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
               **unused) -> TaDiCodecEncoderOutput:
        """Waveforms (batch, samples) at 24 kHz (`attention_mask` 1 on real samples) → codes (batch, tokens)."""
        audio, lengths = self._audio(input_values, attention_mask)
        step = self.config.samples_per_token
        token_lengths = -(-lengths // step)
        num_tokens = audio.shape[1] // step
        frame_mask = self._frame_mask(token_lengths, num_tokens)
        quantized, _ = self._quantize(self._mel(audio), frame_mask)
        token_mask = torch.arange(num_tokens, device=audio.device)[None] < token_lengths[:, None]
        return TaDiCodecEncoderOutput(codes=quantized.indices, latents=quantized.quantized.detach(),
                                      lengths=token_lengths, attention_mask=token_mask, audio_lengths=lengths)

    @property
    def text_tokenizer(self):
        """The transcript tokenizer: one attached with `model.text_tokenizer = processor.tokenizer`, else the
        config's character tokenizer (`text_alphabet`, tiny variant), else the tokenizer saved with the model
        (tokenizer.json in its folder / repo, looked up once); None if there is none. Used by `decode(text=...)`."""
        if getattr(self, "_text_tokenizer", None) is None and not getattr(self, "_text_tokenizer_looked_up", False):
            self._text_tokenizer_looked_up = True
            if self.config.text_alphabet is not None:
                self._text_tokenizer = build_character_tokenizer(self.config.text_alphabet)
            elif self.name_or_path:
                from transformers import PreTrainedTokenizerFast

                try:
                    self._text_tokenizer = PreTrainedTokenizerFast.from_pretrained(self.name_or_path)
                except (OSError, ValueError):
                    pass
        return getattr(self, "_text_tokenizer", None)

    @text_tokenizer.setter
    def text_tokenizer(self, tokenizer) -> None:
        self._text_tokenizer = tokenizer

    def _tokenize(self, text):
        if isinstance(text, str):
            text = [text]
        if not isinstance(text, (list, tuple)) or not all(isinstance(t, str) for t in text):
            raise ValueError(f"`text` must be a string or a list of strings (one transcript per item), got "
                             f"{type(text).__name__}.")
        tokenizer = self.text_tokenizer
        if tokenizer is None:
            raise ValueError("decode(text=...) needs the model's text tokenizer: load the model from a folder that "
                             "has tokenizer.json, set model.text_tokenizer = processor.tokenizer, or pass text_ids.")
        batch = tokenizer(list(text), padding=True, add_special_tokens=False, return_tensors="pt")  # as released
        return batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)

    def _text(self, text_ids, text_attention_mask, batch: int):
        if text_ids is None:
            raise ValueError("TaDiCodec decodes with the transcript: pass text_ids (processor(text=...).text_ids). "
                             "The released decoder never saw speech without text; without it the words are lost.")
        text_ids = check_codes(text_ids, "text_ids", self.config.text_vocab_size, ndim=2,
                               shape_doc="(batch, text_tokens)")
        if text_ids.shape[0] != batch:
            raise ValueError(f"text_ids has {text_ids.shape[0]} rows for {batch} code sequences.")
        if text_attention_mask is None:
            text_attention_mask = torch.ones_like(text_ids, dtype=torch.bool)
        return self.text_emb(text_ids), text_attention_mask.bool()

    def _noise(self, shape, generator, device, dtype) -> torch.Tensor:
        if isinstance(generator, (list, tuple)):
            if len(generator) != shape[0]:
                raise ValueError(f"Got {len(generator)} generators for a batch of {shape[0]}.")
            return torch.stack([torch.randn(shape[1:], generator=g, device=g.device).to(device, dtype)
                                for g in generator])
        noise = torch.randn(shape, generator=generator, device=generator.device if generator else device)
        return noise.to(device, dtype)

    @torch.no_grad()
    def decode(self, codes: torch.LongTensor | None = None, latents: torch.FloatTensor | None = None, *,
               text: str | list[str] | None = None, text_ids: torch.LongTensor | None = None,
               text_attention_mask: torch.Tensor | None = None, lengths: torch.LongTensor | None = None,
               prompt_values: torch.Tensor | None = None,
               prompt_attention_mask: torch.Tensor | None = None, generator=None,
               num_inference_steps: int | None = None, guidance_scale: float | None = None,
               guidance_rescale: float | None = None, audio_lengths: torch.LongTensor | None = None,
               vocode: bool = True) -> TaDiCodecDecoderOutput:
        """Codes (batch, tokens) + transcript ids (+ a voice prompt) → waveform (batch, tokens·3840) at 24 kHz.

        Args:
            lengths: valid tokens per item (padding tokens beyond them decode to silence-length frames that are
                cut by `audio_lengths`). audio_lengths: samples to keep per item (e.g. `encode(...).audio_lengths`).
            prompt_values / prompt_attention_mask: prompt audio (batch, samples) at 24 kHz: its mel is the clean
                prefix and its codes precede `codes`; the transcript must then cover prompt and target.
            text: transcripts (strings; tokenized with `text_tokenizer`), or text_ids / text_attention_mask from
                `processor(text=...)`.
            num_inference_steps (default 32), guidance_scale (2.0; 1 disables CFG), guidance_rescale (0.75).
        """
        config = self.config
        if (codes is None) == (latents is None):
            raise ValueError("Pass exactly one of codes (batch, tokens) and latents (batch, tokens, vq_dim).")
        if codes is not None:
            codes = check_codes(codes, "codes", config.codebook_size, ndim=2, shape_doc="(batch, tokens)")
            latents = self.quantizer.indices_to_codes(codes)
        latents = latents.to(self.vq_out_linear.weight.dtype)
        batch, num_tokens = latents.shape[:2]
        device = latents.device
        lengths = torch.full((batch,), num_tokens, device=device) if lengths is None else lengths.to(device)
        steps = num_inference_steps or config.num_inference_steps
        scale = config.guidance_scale if guidance_scale is None else guidance_scale
        rescale = config.guidance_rescale if guidance_rescale is None else guidance_rescale
        if steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {steps}.")
        if text is not None:
            text_ids, text_attention_mask = self._tokenize(text)
        text, text_mask = self._text(text_ids, text_attention_mask, batch)

        prompt_mel = latents.new_zeros(batch, 0, config.n_mels)
        prompt_frames = torch.zeros(batch, dtype=torch.long, device=device)
        if prompt_values is not None:
            prompt_audio, prompt_samples = self._audio(prompt_values, prompt_attention_mask, "prompt_values")
            prompt = self.encode(prompt_audio)
            if (prompt.lengths != prompt.lengths[0]).any():
                raise ValueError("Prompts in one batch must have the same number of tokens.")
            latents = torch.cat([prompt.latents.to(latents.dtype), latents], dim=1)
            lengths = lengths + prompt.lengths
            prompt_mel = self._mel(prompt_audio).to(latents.dtype)
            prompt_frames = prompt.lengths * config.down_sample_factor
        factor = config.down_sample_factor
        cond = _upsample_codes(self.vq_out_linear(latents), lengths, factor)
        total_frames = cond.shape[1]
        prefix = prompt_mel.shape[1]
        frame_mask = torch.arange(total_frames, device=device)[None] < (lengths * factor)[:, None]
        target_mask = frame_mask[:, prefix:]
        noise = self._noise((batch, total_frames - prefix, config.n_mels), generator, device, cond.dtype)
        x = noise
        h = 1.0 / steps
        for i in range(steps):
            t = torch.full((batch,), (i + 0.5) * h, device=device, dtype=cond.dtype)  # midpoint times, as released
            inputs = torch.cat([prompt_mel, x], dim=1)
            flow = self.decoder(inputs, frame_mask, cond=cond, t=t, text=text, text_mask=text_mask)[:, prefix:]
            if scale > 0 and scale != 1.0:  # (the released code skips guidance for scale <= 0; 1 is a no-op)
                uncond = self.decoder(inputs, frame_mask, cond=torch.zeros_like(cond), t=t)[:, prefix:]
                guided = uncond + scale * (flow - uncond)
                if rescale > 0:  # std rescale per item over its valid frames (released: one item per call)
                    std_flow, std_guided = _masked_std(flow, target_mask), _masked_std(guided, target_mask)
                    rescaled = guided * (std_flow / std_guided.clamp_min(1e-6))
                    guided = torch.where(std_guided > 1e-6, rescale * rescaled + (1 - rescale) * guided, guided)
                flow = guided
            x = x + h * flow.float().to(x.dtype)
        mel = x.transpose(1, 2)  # target frames only
        out_lengths = (lengths - prompt_frames // factor) * config.samples_per_token
        if audio_lengths is not None:
            out_lengths = torch.minimum(out_lengths, audio_lengths.to(device))
        if not vocode:
            return TaDiCodecDecoderOutput(reconstruction=None, lengths=out_lengths, mel=mel)
        audio = self.vocoder(mel.float())
        mask = torch.arange(audio.shape[1], device=device)[None] < out_lengths[:, None]
        audio = audio * mask
        if audio_lengths is not None:
            audio = audio[:, : int(out_lengths.max())]
        return TaDiCodecDecoderOutput(reconstruction=audio, lengths=out_lengths, mel=mel)

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
                text_ids: torch.LongTensor | None = None, text_attention_mask: torch.Tensor | None = None,
                text: list[str] | None = None, generator: torch.Generator | None = None,
                **unused) -> TaDiCodecOutput:
        """Training step of the released recipe: encode → BSQ → flow-matching loss on the non-prompt frames. The
        transcript (`text_ids`, or `text` strings with the model's tokenizer) is required, as in the released
        trainer."""
        config = self.config
        if text is not None and text_ids is None:
            text_ids, text_attention_mask = self._tokenize(text)
        audio, lengths = self._audio(input_values, attention_mask)
        step = config.samples_per_token
        token_lengths = -(-lengths // step)
        num_tokens = audio.shape[1] // step
        frame_mask = self._frame_mask(token_lengths, num_tokens)
        with torch.no_grad():
            mel = self._mel(audio)
        quantized, unit = self._quantize(mel, frame_mask)
        codes = self._scaled_codes(unit, quantized.quantized.detach())
        cond = _upsample_codes(self.vq_out_linear(codes), token_lengths, config.down_sample_factor)
        batch, frames = mel.shape[:2]
        device = mel.device
        rand = lambda *shape: torch.rand(shape, generator=generator, device=device)  # noqa: E731
        t = rand(batch).clamp(1e-5, 1.0)
        noise = torch.randn(mel.shape, generator=generator, device=device, dtype=mel.dtype)
        low, high = min(frames // 4, config.prompt_min_frames), int(frames * config.prompt_max_ratio)
        if rand(1).item() > config.prompt_drop_prob and high > low:  # a clean prefix of [low, high) frames
            prompt_len = torch.randint(low, high, (batch,), generator=generator, device=device)
        else:
            prompt_len = torch.zeros(batch, dtype=torch.long, device=device)
        target = (torch.arange(frames, device=device)[None] >= prompt_len[:, None]).unsqueeze(-1).to(mel.dtype)
        tt = t.view(-1, 1, 1)
        x_t = ((1 - (1 - config.flow_sigma) * tt) * noise + tt * mel) * target + mel * (1 - target)
        if rand(1).item() < config.code_drop_prob:
            cond = torch.zeros_like(cond)
        text_embedding, text_mask = self._text(text_ids, text_attention_mask, batch)
        flow = self.decoder(x_t, frame_mask, cond=cond, t=t, text=text_embedding, text_mask=text_mask)
        flow_target = mel - (1 - config.flow_sigma) * noise
        weight = target.squeeze(-1) * frame_mask.to(mel.dtype)
        per_frame = (flow.float() - flow_target.float()).abs().mean(dim=-1)
        flow_loss = (per_frame * weight).sum() / weight.sum().clamp_min(1)
        entropy_loss = quantized.entropy_loss if quantized.entropy_loss is not None else flow_loss.new_zeros(())
        return TaDiCodecOutput(loss=flow_loss + entropy_loss, flow_loss=flow_loss, entropy_loss=entropy_loss,
                               commitment=quantized.commitment_loss)


__all__ = ["TaDiCodecModel", "TaDiCodecPreTrainedModel", "TaDiCodecEncoderOutput", "TaDiCodecDecoderOutput",
           "TaDiCodecOutput"]
