"""Tests for TaDiCodec's Vocos vocoder (unitok/models/tadicodec/vocos_tadicodec.py)."""

import pytest
import torch
import torch.nn.functional as F

from unitok.models.tadicodec.vocos_tadicodec import ISTFT, ConvNeXtBlock, VocosBackbone, VocosVocoder

TINY = {"input_channels": 128, "dim": 32, "intermediate_dim": 64, "num_layers": 2, "n_fft": 64, "hop_length": 16}


def tiny_vocoder(**overrides) -> VocosVocoder:
    torch.manual_seed(0)
    return VocosVocoder(**{**TINY, **overrides})


def random_spec(batch, n_fft, frames, seed=0, dtype=torch.complex64):
    generator = torch.Generator().manual_seed(seed)
    real = torch.randn(batch, n_fft // 2 + 1, frames, generator=generator, dtype=torch.float64)
    imag = torch.randn(batch, n_fft // 2 + 1, frames, generator=generator, dtype=torch.float64)
    return torch.complex(real, imag).to(dtype)


def loop_istft_same(spec: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Plain-Python overlap-add reference for "same" padding."""
    window = torch.hann_window(n_fft, dtype=spec.real.dtype)
    batch, _, frames = spec.shape
    length = (frames - 1) * hop + n_fft
    signal = torch.zeros(batch, length, dtype=spec.real.dtype)
    envelope = torch.zeros(length, dtype=spec.real.dtype)
    for t in range(frames):
        frame = torch.fft.irfft(spec[:, :, t], n=n_fft, dim=-1) * window
        signal[:, t * hop:t * hop + n_fft] += frame
        envelope[t * hop:t * hop + n_fft] += window**2
    pad = (n_fft - hop) // 2
    return (signal / envelope)[:, pad:length - pad]


@pytest.mark.parametrize("n_fft,hop,frames", [(64, 16, 7), (1920, 480, 3), (32, 8, 1), (48, 16, 5), (50, 15, 5)])
def test_istft_same_matches_loop_reference(n_fft, hop, frames):
    spec = random_spec(2, n_fft, frames, dtype=torch.complex128)
    istft = ISTFT(n_fft, hop, padding="same").double()
    out = istft(spec)
    expected = loop_istft_same(spec, n_fft, hop)
    assert out.shape == expected.shape == (2, istft.output_length(frames))
    if (n_fft - hop) % 2 == 0:
        assert out.shape[-1] == frames * hop
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("n_fft,hop,frames", [(64, 16, 9), (1920, 480, 4)])
def test_istft_inverts_tadicodec_stft(n_fft, hop, frames):
    """TaDiCodec's front end: reflect-pad (n_fft - hop)/2 both sides, torch.stft(center=False), Hann window.
    That padded STFT is inverted exactly by "same" ISTFT — including the edge samples, because only the padding
    (which is trimmed) lies where the window envelope is incomplete."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(3, frames * hop, generator=generator, dtype=torch.float64)
    pad = (n_fft - hop) // 2
    padded = F.pad(x[:, None], (pad, pad), mode="reflect")[:, 0]
    window = torch.hann_window(n_fft, dtype=torch.float64)
    spec = torch.stft(padded, n_fft, hop_length=hop, win_length=n_fft, window=window, center=False,
                      return_complex=True)
    assert spec.shape == (3, n_fft // 2 + 1, frames)
    istft = ISTFT(n_fft, hop, padding="same").double()
    torch.testing.assert_close(istft(spec), x)


def test_istft_center_matches_torch():
    x = torch.randn(2, 160, generator=torch.Generator().manual_seed(2))
    window = torch.hann_window(64)
    spec = torch.stft(x, 64, 16, window=window, center=True, return_complex=True)
    out = ISTFT(64, 16, padding="center")(spec)
    assert out.shape == (2, (spec.shape[-1] - 1) * 16)
    torch.testing.assert_close(out, x)


def test_output_shape_dtype_and_gradients_reach_every_parameter():
    model = tiny_vocoder()
    mel = torch.randn(3, 128, 11, generator=torch.Generator().manual_seed(3))
    audio = model(mel)
    assert audio.shape == (3, 11 * 16) and audio.dtype == torch.float32 and torch.isfinite(audio).all()
    assert model.output_length(11) == 11 * 16
    audio.square().mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
    # float64 input → float64 output; bfloat16 weights still run the ISTFT in float32 (no bf16 complex)
    assert model.double()(mel.double()).dtype == torch.float64
    bf16 = tiny_vocoder().to(torch.bfloat16)
    out = bf16(mel.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16 and out.shape == (3, 176)


def test_backbone_order_of_operations():
    """Backbone = embed → LayerNorm → blocks → final LayerNorm (written out with functional ops)."""
    torch.manual_seed(0)
    backbone = VocosBackbone(8, 16, 24, 2)
    for p in backbone.parameters():  # non-trivial norms and biases
        p.data.normal_(0, 0.3)
    x = torch.randn(2, 8, 5)

    def block(b: ConvNeXtBlock, h):
        y = F.conv1d(h, b.dwconv.weight, b.dwconv.bias, padding=3, groups=h.shape[1]).transpose(1, 2)
        y = F.layer_norm(y, (16,), b.norm.weight, b.norm.bias, eps=1e-6)
        y = F.linear(F.gelu(F.linear(y, b.pwconv1.weight, b.pwconv1.bias)), b.pwconv2.weight, b.pwconv2.bias)
        return h + (b.gamma * y).transpose(1, 2)

    h = F.conv1d(x, backbone.embed.weight, backbone.embed.bias, padding=3)
    h = F.layer_norm(h.transpose(1, 2), (16,), backbone.norm.weight, backbone.norm.bias, eps=1e-6).transpose(1, 2)
    for b in backbone.convnext:
        h = block(b, h)
    h = F.layer_norm(h.transpose(1, 2), (16,), backbone.final_layer_norm.weight, backbone.final_layer_norm.bias,
                     eps=1e-6)
    torch.testing.assert_close(backbone(x), h)


def test_head_splits_log_magnitude_then_phase_and_clips():
    model = tiny_vocoder()
    head = model.head
    hidden = torch.randn(1, 4, 32)
    with torch.no_grad():
        raw = head.out(hidden).transpose(1, 2)
        mag = raw[:, :33].exp().clamp(max=100.0)
        spec = mag * torch.exp(1j * raw[:, 33:])
        torch.testing.assert_close(head(hidden), loop_istft_same(spec, 64, 16), rtol=1e-4, atol=1e-5)
        head.out.bias[:33] = 50.0  # exp(50) would dominate without the 1e2 cap
        assert head(hidden).abs().max() < 1e3


def test_layer_scale_default_is_one_over_num_layers():
    model = tiny_vocoder(num_layers=3)
    for block in model.backbone.convnext:
        torch.testing.assert_close(block.gamma.detach(), torch.full((32,), 1 / 3))
    assert torch.equal(tiny_vocoder(layer_scale_init_value=0.5).backbone.convnext[0].gamma.detach(),
                       torch.full((32,), 0.5))


def test_released_parameter_count():
    cin, dim, inter, layers, n_fft = 128, 1024, 4096, 30, 1920
    block = (dim * 7 + dim) + 2 * dim + (dim * inter + inter) + (inter * dim + dim) + dim  # dwconv,norm,pw1,pw2,γ
    expected = (cin * dim * 7 + dim) + 2 * dim + layers * block + 2 * dim + dim * (n_fft + 2) + (n_fft + 2)
    with torch.device("meta"):
        model = VocosVocoder()
    count = sum(p.numel() for p in model.parameters())
    print(f"released Vocos parameter count: {count:,}")
    assert count == expected == 255_042_434
    assert model.head.istft.window.shape == (1920,)


def test_reset_buffers_restores_window():
    model = tiny_vocoder()
    model.head.istft.window.fill_(0.0)
    model.reset_buffers()
    torch.testing.assert_close(model.head.istft.window, torch.hann_window(64))
    model.head.istft.window.zero_()
    model.head.istft.reset_buffers()
    torch.testing.assert_close(model.head.istft.window, torch.hann_window(64))


def test_state_dict_keys_match_official_names():
    model = tiny_vocoder()
    expected = {"backbone.embed.weight", "backbone.embed.bias", "backbone.norm.weight", "backbone.norm.bias",
                "backbone.final_layer_norm.weight", "backbone.final_layer_norm.bias",
                "head.out.weight", "head.out.bias", "head.istft.window"}
    for i in range(2):
        expected |= {f"backbone.convnext.{i}.gamma"}
        expected |= {f"backbone.convnext.{i}.{m}.{p}" for m in ("dwconv", "norm", "pwconv1", "pwconv2")
                     for p in ("weight", "bias")}
    state = model.state_dict()
    assert set(state) == expected
    assert state["backbone.embed.weight"].shape == (32, 128, 7)
    assert state["backbone.convnext.0.dwconv.weight"].shape == (32, 1, 7)
    assert state["backbone.convnext.0.gamma"].shape == (32,)
    assert state["head.out.weight"].shape == (66, 32)
    # strict round trip
    tiny_vocoder().load_state_dict(state, strict=True)


def test_bad_inputs_raise_value_error_naming_shape():
    model = tiny_vocoder()
    good = torch.randn(2, 128, 4)
    bad = {
        "wrong channels": good[:, :80],
        "no batch dim": good[0],
        "4D": good[None],
        "integer": good.long(),
        "NaN": torch.full_like(good, float("nan")),
        "inf": torch.full_like(good, float("inf")),
        "empty frames": good[:, :, :0],
        "empty batch": good[:0],
        "not a tensor": good.numpy(),
    }
    for description, mel in bad.items():
        with pytest.raises(ValueError, match=r"\(batch, 128, frames\)") as raised:
            model(mel)
        assert raised.value.args, description
    istft = ISTFT(64, 16)
    with pytest.raises(ValueError, match=r"\(batch, 33, frames\)"):
        istft(torch.randn(1, 33, 4))  # real, not complex
    with pytest.raises(ValueError, match=r"\(batch, 33, frames\)"):
        istft(random_spec(1, 62, 4))  # wrong number of bins
    with pytest.raises(ValueError, match=r"\(batch, 33, frames\)"):
        istft(random_spec(1, 64, 4)[0])


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="'center' or 'same'"):
        ISTFT(64, 16, padding="valid")
    with pytest.raises(ValueError, match="win_length"):
        ISTFT(64, 16, win_length=32)
    with pytest.raises(ValueError, match="hop_length"):
        ISTFT(64, 128)
    with pytest.raises(ValueError, match="even n_fft"):
        VocosVocoder(**{**TINY, "n_fft": 63})
    with pytest.raises(ValueError, match="layer_scale_init_value"):
        VocosVocoder(**TINY, layer_scale_init_value=0.0)
