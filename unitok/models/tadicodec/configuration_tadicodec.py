"""TaDiCodec configuration (Wang et al., 2025, "TaDiCodec: Text-aware Diffusion Speech Tokenizer for Speech Language
Modeling", arXiv 2508.16790; official code HeCheng0625/Diffusion-Speech-Tokenizer, config
`egs/tts/TaDiCodec/tadicodec_6_25hz_16384_bsq.json`)."""

from ...configuration_base import UnitokConfig


class TaDiCodecConfig(UnitokConfig):
    r"""Configuration of TaDiCodec: 24 kHz log-mel → bidirectional LLaMA encoder → ×8 down-sampling → 14-bit BSQ
    (6.25 tokens/s) → text-aware flow-matching LLaMA decoder → mel → Vocos vocoder.

    Args:
        sampling_rate, n_fft, win_length, hop_length, n_mels, f_min, f_max: the mel front end (50 frames/s).
        mel_mean / mel_var: normalisation of the log-mel (released statistics).
        hidden_size, num_heads, encoder_layers, decoder_layers, intermediate_size (None → 4·hidden_size, as the
            released LlamaConfig), rms_norm_eps, rope_theta, rope_max_positions (RoPE table length; positions
            cover [text | prompt | target]).
        down_sample_factor: mel frames per token (linear interpolation, no convolution).
        vq_dim: BSQ bits per token (codebook 2**vq_dim). entropy_loss_weight / commitment_loss_weight / gamma0 /
            gamma / inv_temperature: the BSQ loss as released (entropy penalty only).
        text_vocab_size: text-token embedding rows (the released tokenizer has 32,100 entries).
        text_alphabet: when set, the model's text tokenizer is a fixed character tokenizer over these characters
            (the tiny variant); None for checkpoints that ship their tokenizer files (the released one).
        flow_sigma: σ of the flow `x_t = (1 − (1 − σ)t)·z + t·x`.
        code_drop_prob / prompt_drop_prob: per-batch dropout of the code condition and of the clean mel prompt
            in training (as released; the transcript is never dropped by the released trainer).
        prompt_min_frames / prompt_max_ratio: the training prompt is a random prefix of
            `[min(T // 4, prompt_min_frames), prompt_max_ratio · T)` frames.
        num_inference_steps / guidance_scale / guidance_rescale: decode defaults (released pipeline: 32 Euler
            steps at midpoint times, CFG 2.0 dropping text and codes, std rescale 0.75).
        vocoder_*: the Vocos vocoder (ConvNeXt backbone + ISTFT head), part of this model.
    """

    model_type = "unitok_tadicodec"
    modality = "audio"

    sampling_rate: int = 24000
    n_fft: int = 1920
    win_length: int = 1920
    hop_length: int = 480
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float = 12000.0
    mel_mean: float = -4.92
    mel_var: float = 8.14
    hidden_size: int = 1024
    num_heads: int = 16
    encoder_layers: int = 8
    decoder_layers: int = 16
    intermediate_size: int | None = None
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_max_positions: int = 16384
    down_sample_factor: int = 8
    vq_dim: int = 14
    entropy_loss_weight: float = 1.0
    commitment_loss_weight: float = 0.0
    gamma0: float = 1.0
    gamma: float = 1.0
    inv_temperature: float = 1.0
    text_vocab_size: int = 32100
    text_alphabet: str | None = None
    flow_sigma: float = 1e-5
    code_drop_prob: float = 0.2
    prompt_drop_prob: float = 0.2
    prompt_min_frames: int = 5
    prompt_max_ratio: float = 0.4
    num_inference_steps: int = 32
    guidance_scale: float = 2.0
    guidance_rescale: float = 0.75
    vocoder_dim: int = 1024
    vocoder_intermediate_dim: int = 4096
    vocoder_layers: int = 30
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        if self.intermediate_size is None:
            self.intermediate_size = 4 * self.hidden_size
        super().__post_init__(**kwargs)
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads}).")
        if not 1 <= self.vq_dim <= 30:
            raise ValueError(f"vq_dim must be in [1, 30] bits, got {self.vq_dim}.")
        if self.text_alphabet is not None and len(set(self.text_alphabet)) + 3 > self.text_vocab_size:
            raise ValueError(f"text_alphabet needs {len(set(self.text_alphabet)) + 3} ids; text_vocab_size is "
                             f"{self.text_vocab_size}.")
        if self.n_fft < self.hop_length or (self.n_fft - self.hop_length) % 2:
            raise ValueError("n_fft - hop_length must be a non-negative even number (reflect padding on both sides).")

    @property
    def samples_per_token(self) -> int:
        """Audio samples behind one token (3,840 = 160 ms at 24 kHz)."""
        return self.hop_length * self.down_sample_factor

    @property
    def codebook_size(self) -> int:
        return 2**self.vq_dim

    @property
    def tokens_per_second(self) -> float:
        return self.sampling_rate / self.samples_per_token

    @property
    def bits_per_token(self) -> float:
        return float(self.vq_dim)


__all__ = ["TaDiCodecConfig"]
