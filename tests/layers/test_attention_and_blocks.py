import math

import pytest
import torch

from unitok.layers.attention import (
    Attention, block_causal_mask, causal_last_mask, causal_mask, key_padding_mask, prefix_mask,
)
from unitok.layers.embeddings import RotaryEmbedding, apply_rotary
from unitok.layers.transformer import TransformerBlock


def reference_attention(x, attn, mask):
    """Explicit softmax(QKᵀ·scale + mask)·V with per-head LayerNorm on q and k, no SDPA."""
    b, n, d = x.shape
    h, hd = attn.num_heads, attn.head_dim
    q, k, v = (w(x).view(b, n, h, hd).transpose(1, 2) for w in (attn.wq, attn.wk, attn.wv))
    q = torch.nn.functional.layer_norm(q, (hd,), eps=1e-6)
    k = torch.nn.functional.layer_norm(k, (hd,), eps=1e-6)
    scores = q @ k.transpose(-1, -2) * (attn.scale if attn.scale is not None else 1 / math.sqrt(hd))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    out = scores.softmax(-1) @ v
    return attn.proj(out.transpose(1, 2).reshape(b, n, d))


@pytest.mark.parametrize("mask_fn", [lambda n: None, causal_mask, lambda n: causal_last_mask(n - 3, 3),
                                     lambda n: prefix_mask(2, n), lambda n: block_causal_mask([2, 3, n - 5])])
def test_sdpa_attention_matches_reference_math(mask_fn):
    torch.manual_seed(0)
    attn = Attention(32, 4, qk_norm="layernorm", scale=0.3)
    x = torch.randn(2, 9, 32)
    mask = mask_fn(9)
    torch.testing.assert_close(attn(x, mask), reference_attention(x, attn, mask), atol=1e-5, rtol=1e-5)


def test_mask_semantics():
    m = causal_last_mask(3, 2)  # [p p p r r]
    assert m[:3, :3].all() and not m[:3, 3:].any()  # patches see patches only
    assert m[3:, :3].all()  # registers see every patch
    assert m[3, 3] and not m[3, 4] and m[4, 3] and m[4, 4]  # registers causal among themselves
    p = prefix_mask(2, 4)
    assert p[:2, :2].all() and not p[:2, 2:].any() and p[3, :].all() and not p[2, 3]
    b = block_causal_mask([1, 2])
    assert b.tolist() == [[True, False, False], [True, True, True], [True, True, True]]
    k = key_padding_mask(torch.tensor([1, 3]), 3)
    assert k.shape == (2, 1, 1, 3) and k[0, 0, 0].tolist() == [True, False, False] and k[1].all()


def test_rotary_is_a_rotation_with_relative_scores():
    rope = RotaryEmbedding(8, 16)
    cos, sin = rope(16)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    qs, ks = q.expand(1, 1, 16, 8), k.expand(1, 1, 16, 8)
    rq, rk = apply_rotary(qs, cos, sin), apply_rotary(ks, cos, sin)
    torch.testing.assert_close(rq.norm(dim=-1), qs.norm(dim=-1))
    # <R_m q, R_n k> depends only on m − n
    torch.testing.assert_close((rq[..., 5, :] * rk[..., 2, :]).sum(), (rq[..., 9, :] * rk[..., 6, :]).sum())
    garbage = RotaryEmbedding(8, 16)
    garbage.cos.fill_(7)
    garbage.reset_buffers()
    assert torch.equal(garbage.cos, rope.cos)
    with pytest.raises(ValueError):
        rope(17)


def test_adaln_zero_block_is_identity_at_init_and_groups_modulate_separately():
    torch.manual_seed(0)
    block = TransformerBlock(16, 2, 32, adaln_cond_dim=8, adaln_groups=2)
    torch.nn.init.zeros_(block.adaLN_modulation[1].weight)
    torch.nn.init.zeros_(block.adaLN_modulation[1].bias)
    x, cond = torch.randn(2, 5, 16), torch.randn(2, 8)
    groups = torch.tensor([0, 0, 0, 1, 1])
    torch.testing.assert_close(block(x, None, cond, groups), x)  # zero gates → identity
    with torch.no_grad():  # open only group 1's attention gate (chunk 0 of the second set of 6·dim)
        block.adaLN_modulation[1].bias[6 * 16 : 7 * 16] = 1.0
    out = block(x, None, cond, groups)
    torch.testing.assert_close(out[:, :3], x[:, :3])
    assert not torch.allclose(out[:, 3:], x[:, 3:])
