import math

import numpy as np
import pytest
import torch

from unitok.layers.embeddings import SinCos2DPositionEmbedding, TimestepEmbedder, sincos_2d, timestep_frequencies
from unitok.layers.flow import adaptive_projected_guidance, flow_training_pair, sample_flow, sample_flow_time
from unitok.layers.nested_dropout import NestedDropout, sample_keep_counts


def test_sincos_2d_layout():
    dim, grid = 16, 4
    table = sincos_2d(grid, grid, dim)
    omega = [10000 ** (-k / (dim / 4)) for k in range(dim // 4)]
    r, c = 2, 3
    row = table[r * grid + c]
    expected = [math.sin(r * w) for w in omega] + [math.cos(r * w) for w in omega] + \
        [math.sin(c * w) for w in omega] + [math.cos(c * w) for w in omega]
    torch.testing.assert_close(row, torch.tensor(expected, dtype=torch.float32))
    module = SinCos2DPositionEmbedding(grid, grid, dim)
    module.table.fill_(float("nan"))
    module.reset_buffers()
    assert torch.equal(module.table, table)


def test_timestep_features_cos_first_and_max_period():
    t = torch.tensor([0.25])
    features = timestep_frequencies(t * 1000, 8, max_period=256)
    freqs = [math.exp(-math.log(256) * i / 4) for i in range(4)]
    expected = [math.cos(250 * f) for f in freqs] + [math.sin(250 * f) for f in freqs]
    torch.testing.assert_close(features[0], torch.tensor(expected), atol=1e-5, rtol=1e-5)
    embedder = TimestepEmbedder(12, frequency_dim=8, max_period=256, time_scale=1000)
    assert embedder(torch.rand(3)).shape == (3, 12)


def test_flow_pair_and_euler_sampler_follow_minrf():
    x0, noise, t = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4), torch.tensor([0.0, 0.5, 1.0])
    xt, target = flow_training_pair(x0, noise, t)
    torch.testing.assert_close(xt[0], x0[0])
    torch.testing.assert_close(xt[2], noise[2])
    torch.testing.assert_close(target, noise - x0)
    # with the exact (constant) velocity, Euler recovers x0 from the noise in any number of steps
    seen = []

    def velocity(x, time, guided):
        seen.append(time[0].item())
        return noise - x0

    out = sample_flow(velocity, noise, num_inference_steps=4)
    torch.testing.assert_close(out, x0, atol=1e-5, rtol=1e-5)
    assert np.allclose(seen, [1.0, 0.75, 0.5, 0.25])  # minRF's grid: t = i/N for i = N..1

    # a reference minRF loop with a non-linear velocity field: x ← x − v(x, t)/N
    def field(x, time, guided):
        return torch.sin(x) * time.view(-1, 1, 1, 1)

    x = noise.clone()
    for i in range(5, 0, -1):
        x = x - field(x, torch.full((3,), i / 5), False) / 5
    torch.testing.assert_close(sample_flow(field, noise, num_inference_steps=5), x, atol=1e-5, rtol=1e-5)


def reference_apg(v_c, v_u, scale, running, momentum=-0.5, eta=0.0, threshold=2.5):
    out, new_running = [], []
    for i in range(v_c.shape[0]):
        d = (v_c[i] - v_u[i]).double()
        r = d if running is None else d + momentum * running[i].double()
        d = r * min(1.0, threshold / r.norm().item())
        unit = v_c[i].double() / v_c[i].double().norm()
        par = (d * unit).sum() * unit
        out.append((v_c[i].double() + (scale - 1) * ((d - par) + eta * par)).float())
        new_running.append(r.float())
    return torch.stack(out), torch.stack(new_running)


def test_apg_matches_reference_over_two_steps():
    torch.manual_seed(0)
    running = None
    ref_running = None
    for _ in range(2):
        v_c, v_u = torch.randn(2, 3, 4, 4) * 3, torch.randn(2, 3, 4, 4)
        guided, running = adaptive_projected_guidance(v_c, v_u, 4.0, running)
        expected, ref_running = reference_apg(v_c, v_u, 4.0, ref_running)
        torch.testing.assert_close(guided, expected, atol=1e-5, rtol=1e-5)


def test_cfg_formula_in_sampler():
    v_c, v_u = torch.ones(1, 2), torch.zeros(1, 2)
    out = sample_flow(lambda x, t, guided: (v_c, v_u) if guided else v_c, torch.zeros(1, 2), num_inference_steps=1,
                      guidance_scale=3.0, guidance="cfg")
    torch.testing.assert_close(out, torch.full((1, 2), -3.0))  # x − 1·(v_u + 3(v_c − v_u))
    with pytest.raises(ValueError):
        sample_flow(lambda *a: v_c, torch.zeros(1, 2), num_inference_steps=0)


def test_flow_time_sampling():
    t = sample_flow_time(20000, generator=torch.Generator().manual_seed(0))
    assert 0 < t.min() and t.max() < 1 and abs(t.mean().item() - 0.5) < 0.01
    logits = torch.log(t / (1 - t))
    assert abs(logits.std().item() - 1.0) < 0.03
    with pytest.raises(ValueError):
        sample_flow_time(2, distribution="beta")


@pytest.mark.parametrize("mode,allowed", [("uniform", set(range(1, 17))), ("pow2", {1, 2, 4, 8, 16}),
                                          ("uniform_pow2", {1, 2, 4, 8, 16})])
def test_nested_dropout_keep_counts(mode, allowed):
    k = sample_keep_counts(4000, 16, mode, generator=torch.Generator().manual_seed(0))
    assert set(k.tolist()) == allowed
    with pytest.raises(ValueError):
        sample_keep_counts(2, 12, "pow2") if mode != "uniform" else sample_keep_counts(2, 12, "bogus")


def test_nested_dropout_replaces_the_tail_with_the_mask_token():
    layer = NestedDropout(3)
    torch.nn.init.constant_(layer.mask_token, 9.0)
    tokens = torch.zeros(2, 4, 3)
    out = layer(tokens, torch.tensor([1, 3]))
    assert out[0, 0].eq(0).all() and out[0, 1:].eq(9).all() and out[1, :3].eq(0).all() and out[1, 3].eq(9).all()
    assert torch.equal(layer(tokens, None), tokens)
