"""Behaviour of the shared quantizers against reference math written independently here."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from unitok.layers.quantizers import (
    BinarySphericalQuantizer,
    FiniteScalarQuantizer,
    LookupFreeQuantizer,
    QuantizerOutput,
    ResidualVectorQuantizer,
    VectorQuantizer,
    code_usage,
    fp32_region,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def entropy_nats(p, dim=-1):
    return -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(dim)


# ----------------------------------------------------------------------------------------------------------- FSQ

LEVELS = [8, 5, 3, 2]


def fsq_reference(z, levels):
    """FSQ Sec. 3 written out per channel, returning (normalised codes, integer codes)."""
    out_codes, out_ints = [], []
    for i, level in enumerate(levels):
        half_l = (level - 1) * (1 + 1e-3) / 2
        offset = 0.5 if level % 2 == 0 else 0.0
        shift = math.atanh(offset / half_l)
        bounded = torch.tanh(z[..., i] + shift) * half_l - offset
        out_ints.append(torch.round(bounded))
        out_codes.append(bounded)
    return torch.stack(out_codes, -1), torch.stack(out_ints, -1)


def fsq_grid(levels):
    """All grid points, enumerated so that the FIRST level is the least significant digit."""
    digits = [tuple(reversed(d)) for d in itertools.product(*[range(level) for level in reversed(levels)])]
    digits = torch.tensor(digits, dtype=torch.long)  # row k holds the digits of index k
    half = torch.tensor([level // 2 for level in levels])
    return digits, (digits - half).float() / half


def test_fsq_every_index_round_trips_on_the_exact_grid():
    fsq = FiniteScalarQuantizer(LEVELS)
    assert fsq.codebook_size == 8 * 5 * 3 * 2 and fsq.dim == 4
    digits, grid = fsq_grid(LEVELS)
    indices = torch.arange(fsq.codebook_size)
    # hand-written mixed radix: index = d0 + 8 * d1 + 40 * d2 + 120 * d3
    assert torch.equal(digits[:, 0] + 8 * digits[:, 1] + 40 * digits[:, 2] + 120 * digits[:, 3], indices)
    assert torch.equal(fsq.indices_to_codes(indices), grid)
    assert torch.equal(fsq.codes_to_indices(grid), indices)
    assert grid.min() >= -1 and grid.max() <= 1
    # forward reaches every grid point: feed the pre-image of each integer code through the tanh bound
    pre = []
    for i, level in enumerate(LEVELS):
        half_l = (level - 1) * (1 + 1e-3) / 2
        offset = 0.5 if level % 2 == 0 else 0.0
        ints = (digits[:, i] - level // 2).double()
        pre.append(torch.atanh((ints + offset) / half_l) - math.atanh(offset / half_l))
    out = fsq(torch.stack(pre, -1).float())
    assert torch.equal(out.quantized, grid) and torch.equal(out.indices, indices)


def test_fsq_first_level_is_least_significant():
    fsq = FiniteScalarQuantizer([4, 3])
    codes = torch.tensor([[-1.0, -1.0], [-0.5, -1.0], [-1.0, 0.0], [0.5, 1.0]])  # digits (0,0) (1,0) (0,1) (3,2)
    assert fsq.codes_to_indices(codes).tolist() == [0, 1, 4, 3 + 4 * 2]


def test_fsq_forward_matches_reference_and_straight_through():
    fsq = FiniteScalarQuantizer(LEVELS)
    z = (3 * torch.randn(2, 50, 4)).requires_grad_()
    out = fsq(z)
    assert isinstance(out, QuantizerOutput) and out.quantized.shape == z.shape and out.indices.shape == (2, 50)
    assert out.indices.dtype == torch.long and out.loss.item() == 0.0
    bounded, ints = fsq_reference(z.detach(), LEVELS)
    half = torch.tensor([level // 2 for level in LEVELS]).float()
    assert torch.equal(out.quantized.detach(), ints / half)
    assert torch.equal(out.indices, fsq.codes_to_indices(ints / half))
    # Straight-through: d quantized / d z is the derivative of the (continuous) bound, the rounding is identity.
    g = torch.randn_like(z)
    (out.quantized * g).sum().backward()
    z_ref = z.detach().clone().requires_grad_()
    ((fsq_reference(z_ref, LEVELS)[0] / half) * g).sum().backward()
    torch.testing.assert_close(z.grad, z_ref.grad)


def test_fsq_reset_buffers_and_no_persistent_state():
    fsq = FiniteScalarQuantizer(LEVELS)
    assert len(fsq.state_dict()) == 0
    expected = {k: v.clone() for k, v in fsq.named_buffers()}
    assert set(expected) == {"_levels", "_basis"}
    for buf in fsq.buffers():
        buf.fill_(-12345)
    fsq.reset_buffers()
    for name, buf in fsq.named_buffers():
        assert torch.equal(buf, expected[name])
    # transformers 5 style: build on meta, materialise uninitialised storage, then re-init
    with torch.device("meta"):
        meta_fsq = FiniteScalarQuantizer(LEVELS)
    meta_fsq.to_empty(device="cpu")
    meta_fsq.reset_buffers()
    z = torch.randn(7, 4)
    assert torch.equal(meta_fsq(z).indices, fsq(z).indices)


# ------------------------------------------------------------------------------------------------------ BSQ / LFQ


def test_bsq_msb_first_hand_built():
    dim = 5
    bsq = BinarySphericalQuantizer(dim)
    z = torch.tensor(
        [
            [1.0, -1, -1, -1, -1],  # bit 0 only -> 2**(dim-1)
            [-1.0, -1, -1, -1, 1],  # last bit only -> 1
            [1.0, 1, 1, 1, 1],
            [-1.0, -1, -1, -1, -1],
            [0.0, -1, -1, -1, -1],  # 0 maps to +
        ]
    )
    out = bsq(z)
    assert out.indices.tolist() == [16, 1, 31, 0, 16]
    assert torch.equal(out.quantized, torch.where(z >= 0, 1.0, -1.0) / math.sqrt(dim))
    lsb = BinarySphericalQuantizer(dim, msb_first=False)
    assert lsb(z).indices.tolist() == [1, 16, 31, 0, 1]


@pytest.mark.parametrize("cls,scale", [(BinarySphericalQuantizer, 1 / math.sqrt(6)), (LookupFreeQuantizer, 1.0)])
def test_binary_brute_force_codebook(cls, scale):
    dim = 6
    quantizer = cls(dim)
    assert quantizer.codebook_size == 64
    # itertools.product enumerates with the first coordinate most significant, i.e. MSB-first order
    codebook = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=dim))) * scale
    indices = torch.arange(64)
    assert torch.equal(quantizer.indices_to_codes(indices), codebook)
    assert torch.equal(quantizer.codes_to_indices(codebook), indices)
    z = torch.randn(3, 40, dim)
    out = quantizer(z)
    u = F.normalize(z, dim=-1) if cls is BinarySphericalQuantizer else z
    nearest = torch.cdist(u.reshape(-1, dim), codebook).argmin(-1)
    assert torch.equal(out.indices.reshape(-1), nearest)
    assert torch.equal(out.quantized, codebook[out.indices])


def test_binary_straight_through():
    z = torch.randn(4, 9, 8, requires_grad=True)
    g = torch.randn_like(z)
    (LookupFreeQuantizer(8)(z).quantized * g).sum().backward()
    assert torch.equal(z.grad, g)  # LFQ: identity
    z.grad = None
    (BinarySphericalQuantizer(8)(z).quantized * g).sum().backward()
    z_ref = z.detach().clone().requires_grad_()
    (F.normalize(z_ref, dim=-1) * g).sum().backward()
    torch.testing.assert_close(z.grad, z_ref.grad)  # BSQ: identity through the sign, Jacobian of the projection


@pytest.mark.parametrize("group_size", [1, 2, 4])
def test_bsq_entropy_loss_matches_brute_force_softmax(group_size):
    dim, tau, n = 4, 3.0, 64
    bsq = BinarySphericalQuantizer(
        dim, entropy_loss_weight=0.7, commitment_loss_weight=0.3, gamma0=1.0, gamma=0.8,
        inv_temperature=tau, group_size=group_size,
    )
    z = torch.randn(n, dim)
    out = bsq(z)
    u = F.normalize(z, dim=-1)
    codebook = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=dim))) / math.sqrt(dim)
    p = (-tau * torch.cdist(u, codebook).pow(2)).softmax(-1)  # (n, 16): distance softmax over all codes
    per_sample = entropy_nats(p).mean()
    # codebook entropy: exact within groups of `group_size` bits, groups treated as independent
    bits = codebook > 0
    codebook_entropy = 0.0
    for start in range(0, dim, group_size):
        sub = bits[:, start:start + group_size]
        sub_index = (sub.long() * (2 ** torch.arange(group_size))).sum(-1)  # any bijection will do
        group_p = torch.zeros(n, 2**group_size).index_add_(1, sub_index, p)
        codebook_entropy = codebook_entropy + entropy_nats(group_p.mean(0))
    expected_entropy = 0.7 * (1.0 * per_sample - 0.8 * codebook_entropy)
    torch.testing.assert_close(out.entropy_loss, expected_entropy, rtol=1e-5, atol=1e-6)
    expected_commit = 0.3 * F.mse_loss(u, torch.where(u >= 0, 1.0, -1.0) / math.sqrt(dim))
    torch.testing.assert_close(out.commitment_loss, expected_commit)
    torch.testing.assert_close(out.loss, expected_entropy + expected_commit)


@pytest.mark.parametrize("cls", [BinarySphericalQuantizer, LookupFreeQuantizer])
def test_entropy_loss_prefers_spread_over_collapse(cls):
    quantizer = cls(8, entropy_loss_weight=1.0, commitment_loss_weight=0.0, inv_temperature=10.0)
    spread = torch.randn(512, 8)
    collapsed = spread[:1].expand(512, 8)
    out_spread, out_collapsed = quantizer(spread), quantizer(collapsed)
    assert out_spread.commitment_loss is None
    assert out_spread.loss < out_collapsed.loss - 1.0


def test_lfq_entropy_logits():
    lfq = LookupFreeQuantizer(3, entropy_loss_weight=1.0, commitment_loss_weight=0.0, inv_temperature=0.5)
    z = torch.randn(32, 3)
    p1 = torch.sigmoid(4 * 0.5 * z)  # per-bit P(bit=1) of the distance softmax over {±1}^3
    h = lambda q: -(q * q.log() + (1 - q) * (1 - q).log())  # noqa: E731
    expected = h(p1).sum(-1).mean() - h(p1.mean(0)).sum()
    torch.testing.assert_close(lfq(z).entropy_loss, expected)


# ------------------------------------------------------------------------------------------------------------ VQ


def test_vq_euclidean_brute_force_and_losses():
    vq = VectorQuantizer(64, 8)
    z = torch.randn(4, 10, 8, requires_grad=True)
    out = vq(z)
    assert out.indices.shape == (4, 10) and out.quantized.shape == z.shape
    flat = z.detach().reshape(-1, 8)
    dists = torch.cdist(flat, vq.codebook.detach())
    chosen = dists.gather(1, out.indices.reshape(-1, 1)).squeeze(1)
    torch.testing.assert_close(chosen, dists.min(1).values)  # nearest entry (up to float ties)
    q = vq.codebook.detach()[out.indices]
    torch.testing.assert_close(out.quantized.detach(), q)
    torch.testing.assert_close(out.commitment_loss, 0.25 * F.mse_loss(z.detach(), q))
    torch.testing.assert_close(out.codebook_loss, 1.0 * F.mse_loss(q, z.detach()))
    torch.testing.assert_close(out.loss, out.commitment_loss + out.codebook_loss)
    g = torch.randn_like(z)
    (out.quantized * g).sum().backward(retain_graph=True)
    torch.testing.assert_close(z.grad, g)  # straight-through
    out.codebook_loss.backward()
    used = torch.zeros(64, dtype=torch.bool)
    used[out.indices.unique()] = True
    assert (vq.codebook.grad[used].abs().sum(-1) > 0).all() and (vq.codebook.grad[~used] == 0).all()
    torch.testing.assert_close(vq.indices_to_codes(out.indices), q)


def test_vq_cosine_lookup():
    vq = VectorQuantizer(32, 6, distance="cosine")
    z = torch.randn(100, 6)
    out = vq(z)
    sims = F.normalize(z, dim=-1) @ F.normalize(vq.codebook.detach(), dim=-1).T
    assert torch.equal(out.indices, sims.argmax(-1))
    torch.testing.assert_close(out.quantized, F.normalize(vq.codebook.detach()[out.indices], dim=-1))
    torch.testing.assert_close(out.quantized.norm(dim=-1), torch.ones(100))


def test_vq_ema_moves_codes_toward_assigned_means():
    vq = VectorQuantizer(8, 4, use_ema=True, ema_decay=0.5, ema_eps=1e-5)
    assert not vq.codebook.requires_grad
    assert set(vq.state_dict()) == {"codebook", "ema_cluster_size", "ema_embed_sum"}
    z = torch.randn(256, 4) * 2
    before = vq.codebook.detach().clone()
    vq.eval()
    vq(z)
    assert torch.equal(vq.codebook, before)  # no update in eval mode
    vq.train()
    out = vq(z)
    assert out.codebook_loss is None and out.commitment_loss is not None
    idx = out.indices
    counts = torch.bincount(idx, minlength=8).float()
    sums = torch.zeros(8, 4).index_add_(0, idx, z)
    cluster = 0.5 * 1.0 + 0.5 * counts  # EMA statistics start at one pseudo-count at the initial code
    embed = 0.5 * before + 0.5 * sums
    smoothed = (cluster + 1e-5) / (cluster.sum() + 8e-5) * cluster.sum()
    torch.testing.assert_close(vq.codebook.detach(), embed / smoothed[:, None])
    torch.testing.assert_close(vq.ema_cluster_size, cluster)
    used = counts > 0
    means = sums[used] / counts[used, None]
    assert ((vq.codebook[used] - means).norm(dim=-1) < (before[used] - means).norm(dim=-1)).all()


# ---------------------------------------------------------------------------------------------------- residual VQ


def test_rvq_prefix_decode_and_shapes():
    rvq = ResidualVectorQuantizer(4, 16, 6).eval()
    z = torch.randn(3, 20, 6)
    out = rvq(z)
    assert out.indices.shape == (3, 20, 4)
    torch.testing.assert_close(rvq.indices_to_codes(out.indices), out.quantized, atol=1e-6, rtol=0)
    two = rvq(z, num_quantizers=2)
    assert two.indices.shape == (3, 20, 2) and torch.equal(two.indices, out.indices[..., :2])
    by_hand = rvq.layers[0].codebook[two.indices[..., 0]] + rvq.layers[1].codebook[two.indices[..., 1]]
    torch.testing.assert_close(two.quantized, by_hand.detach(), atol=1e-6, rtol=0)
    torch.testing.assert_close(rvq.indices_to_codes(out.indices[..., :2]), by_hand.detach())
    # each layer quantizes the residual left by the previous ones
    residual = z - rvq.layers[0].codebook.detach()[out.indices[..., 0]]
    assert torch.equal(rvq.layers[1](residual).indices, out.indices[..., 1])
    g = torch.randn_like(z)
    z.requires_grad_()
    (rvq(z).quantized * g).sum().backward()
    torch.testing.assert_close(z.grad, g)  # straight-through


def test_rvq_more_quantizers_lower_error_after_fitting():
    rvq = ResidualVectorQuantizer(4, 64, 4).eval()
    z = torch.randn(1024, 4)
    with torch.no_grad():  # data-dependent init: each codebook = a sample of the residual it will see
        for i, layer in enumerate(rvq.layers):
            residual = z if i == 0 else z - rvq(z, num_quantizers=i).quantized
            layer.codebook.copy_(residual[torch.randperm(1024)[:64]])
    errors = [F.mse_loss(rvq(z, num_quantizers=n).quantized, z).item() for n in range(1, 5)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors


def test_rvq_quantizer_dropout_only_in_training():
    rvq = ResidualVectorQuantizer(4, 16, 6, quantizer_dropout=1.0)
    z = torch.randn(64, 5, 6)
    rvq.eval()
    out = rvq(z)
    torch.testing.assert_close(out.quantized, rvq.indices_to_codes(out.indices), atol=1e-6, rtol=0)
    rvq.train()
    out = rvq(z)
    used = []
    for b in range(64):  # every item uses some prefix n_b for all its positions
        matches = [
            n for n in range(1, 5)
            if torch.allclose(out.quantized[b], rvq.indices_to_codes(out.indices[b, :, :n]), atol=1e-5)
        ]
        assert len(matches) == 1
        used.append(matches[0])
    assert min(used) < 4 and len(set(used)) > 1
    assert torch.isfinite(out.loss)


def test_rvq_forwards_vq_kwargs_and_updates_ema_only_in_training():
    rvq = ResidualVectorQuantizer(2, 8, 4, use_ema=True, distance="cosine")
    assert all(layer.use_ema and layer.distance == "cosine" for layer in rvq.layers)
    before = [layer.codebook.clone() for layer in rvq.layers]
    z = torch.randn(16, 4)
    assert rvq.eval()(z).codebook_loss is None
    assert all(torch.equal(layer.codebook, b) for layer, b in zip(rvq.layers, before))
    rvq.train()(z)
    assert all(not torch.equal(layer.codebook, b) for layer, b in zip(rvq.layers, before))


# ----------------------------------------------------------------------------------------------- shared behaviour


def all_quantizers():
    return [
        FiniteScalarQuantizer([8, 5, 5, 5]),
        BinarySphericalQuantizer(4),
        LookupFreeQuantizer(4),
        VectorQuantizer(1024, 4),  # large codebook: bf16 distances would flip some argmins
        VectorQuantizer(1024, 4, distance="cosine"),
        ResidualVectorQuantizer(3, 32, 4),
    ]


@pytest.mark.parametrize("quantizer", all_quantizers(), ids=lambda q: type(q).__name__)
def test_fp32_under_bf16_autocast(quantizer):
    quantizer.eval()
    z = torch.randn(2, 33, 4) * 2
    ref = quantizer(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        amp = quantizer(z)
    assert amp.quantized.dtype == torch.float32
    assert torch.equal(amp.quantized, ref.quantized) and torch.equal(amp.indices, ref.indices)
    torch.testing.assert_close(amp.loss, ref.loss, rtol=0, atol=0)
    z16 = z.bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out16 = quantizer(z16)
    assert out16.quantized.dtype == torch.bfloat16
    assert torch.equal(out16.indices, quantizer(z16.float()).indices)


def test_fp32_region():
    x = torch.randn(3, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with fp32_region(x) as x32:
            assert x32.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
            assert (x32 @ x32).dtype == torch.float32


@pytest.mark.parametrize("quantizer", all_quantizers(), ids=lambda q: type(q).__name__)
def test_bad_inputs_raise(quantizer):
    with pytest.raises(ValueError, match="expected last dimension 4"):
        quantizer(torch.randn(2, 5))
    with pytest.raises(ValueError, match="floating"):
        quantizer(torch.ones(2, 4, dtype=torch.long))
    for bad in (float("nan"), float("inf")):
        z = torch.randn(2, 4)
        z[1, 2] = bad
        with pytest.raises(ValueError, match="NaN or inf"):
            quantizer(z)
    size = quantizer.codebook_size
    trailing = (3,) if isinstance(quantizer, ResidualVectorQuantizer) else ()
    with pytest.raises(ValueError, match=rf"\[0, {size}\)"):
        quantizer.indices_to_codes(torch.full((2, *trailing), size))
    with pytest.raises(ValueError, match=rf"\[0, {size}\)"):
        quantizer.indices_to_codes(torch.full((2, *trailing), -1))
    with pytest.raises(ValueError, match="integer dtype"):
        quantizer.indices_to_codes(torch.zeros(2, *trailing))


def test_bad_constructor_and_prefix_arguments():
    with pytest.raises(ValueError):
        FiniteScalarQuantizer([8, 1])
    with pytest.raises(ValueError):
        BinarySphericalQuantizer(6, group_size=4)
    with pytest.raises(ValueError):
        VectorQuantizer(8, 4, distance="manhattan")
    rvq = ResidualVectorQuantizer(3, 8, 4)
    with pytest.raises(ValueError, match=r"\[1, 3\]"):
        rvq(torch.randn(2, 4), num_quantizers=4)
    with pytest.raises(ValueError, match=r"\[1, 3\]"):
        rvq.indices_to_codes(torch.zeros(2, 4, dtype=torch.long))


def test_code_usage():
    stats = code_usage(torch.arange(16).repeat(3), 16)
    torch.testing.assert_close(stats["perplexity"], torch.tensor(16.0))
    assert stats["usage"].item() == 1.0 and torch.equal(stats["histogram"], torch.full((16,), 3.0))
    stats = code_usage(torch.full((5, 7), 3), 16)
    torch.testing.assert_close(stats["perplexity"], torch.tensor(1.0))
    assert stats["usage"].item() == 1 / 16 and stats["histogram"][3].item() == 35
    half = code_usage(torch.tensor([0, 1, 2, 3]), 8)  # uniform over 4 of 8 codes
    torch.testing.assert_close(half["perplexity"], torch.tensor(4.0))
    assert half["usage"].item() == 0.5
    with pytest.raises(ValueError):
        code_usage(torch.tensor([16]), 16)
