"""CAD metrics: DeepCAD token accuracies, Chamfer distance against brute force, invalid ratio, CADMetrics."""

import math

import pytest
import torch

from unitok.data.cad import ARC, CIRCLE, EOS, EXT, LINE, SOL, CADProgram
from unitok.evaluation.metrics.cad import CADMetrics, chamfer_distance, invalid_ratio, token_accuracy

PAD = [-1] * 16


def row(kind, x=-1, y=-1, sweep=-1, ccw=-1, r=-1, ext=(-1,) * 11):
    return [kind, x, y, sweep, ccw, r, *ext]


EXT_PARAMS = (128, 128, 128, 128, 128, 128, 64, 160, 128, 0, 0)
# a rounded sketch: SOL, 2 lines, 1 arc, then a circle loop; Ext; EOS — 2+2+4+3+11 = 22 scored parameters
REF = torch.tensor([row(SOL), row(LINE, 200, 128), row(LINE, 200, 180), row(ARC, 128, 128, 64, 1),
                    row(SOL), row(CIRCLE, 170, 150, r=10), row(EXT, ext=EXT_PARAMS), row(EOS)])


def edited(index, slot, delta):
    est = REF.clone()
    est[index, slot] += delta
    return est


def test_token_accuracy_identical_and_tolerance_boundary():
    assert token_accuracy(REF, REF) == {"command_accuracy": 1.0, "parameter_accuracy": 1.0, "num_parameters": 22}
    assert token_accuracy(REF, edited(1, 1, 2))["parameter_accuracy"] == 1.0  # |Δ| = 2 < η = 3: correct
    assert token_accuracy(REF, edited(1, 1, -3))["parameter_accuracy"] == pytest.approx(21 / 22)  # |Δ| = 3: wrong
    assert token_accuracy(REF, edited(6, 13, 3), tolerance=4)["parameter_accuracy"] == 1.0
    assert token_accuracy(REF, edited(3, 3, 2))["parameter_accuracy"] == 1.0  # arc sweep: tolerant
    assert token_accuracy(REF, edited(3, 4, -1))["parameter_accuracy"] == pytest.approx(21 / 22)  # direction: exact
    assert token_accuracy(REF, edited(6, 15, 1))["parameter_accuracy"] == pytest.approx(21 / 22)  # boolean: exact
    assert token_accuracy(REF, edited(6, 16, 1))["parameter_accuracy"] == pytest.approx(21 / 22)  # extent type: exact
    assert token_accuracy(REF, edited(1, 5, 50))["parameter_accuracy"] == 1.0  # slot unused by Line: ignored


def test_token_accuracy_command_mismatch_and_length():
    wrong = edited(2, 0, ARC - LINE)  # Line → Arc: its 2 parameters are no longer scored
    assert token_accuracy(REF, wrong) == {"command_accuracy": 7 / 8, "parameter_accuracy": 1.0, "num_parameters": 20}
    short = REF[:6]  # truncated: missing Ext and EOS (EOS padding matches the reference EOS)
    assert token_accuracy(REF, short) == {"command_accuracy": 7 / 8, "parameter_accuracy": 1.0, "num_parameters": 11}
    long = torch.cat([REF[:-1], torch.tensor([row(LINE, 1, 2)]), REF[-1:]])  # one extra command at the end
    assert token_accuracy(REF, long)["command_accuracy"] == 8 / 9
    assert token_accuracy(REF, wrong, pad_to=60)["command_accuracy"] == 59 / 60  # DeepCAD's padded convention
    nothing = token_accuracy(REF, torch.tensor([row(EOS)]))
    assert nothing["command_accuracy"] == 1 / 8 and math.isnan(nothing["parameter_accuracy"])


def brute_chamfer(a, b, squared=True):
    def one_way(x, y):
        total = 0.0
        for p in x.tolist():
            best = min(sum((pi - qi) ** 2 for pi, qi in zip(p, q)) for q in y.tolist())
            total += best if squared else math.sqrt(best)
        return total / len(x)
    return one_way(a, b) + one_way(b, a)


def test_chamfer_distance_matches_brute_force():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.rand(40, 3, generator=generator), torch.rand(55, 3, generator=generator)
    assert chamfer_distance(a, b) == pytest.approx(brute_chamfer(a, b), rel=1e-9)
    assert chamfer_distance(a, b, chunk=7) == pytest.approx(brute_chamfer(a, b), rel=1e-9)
    assert chamfer_distance(a, b, squared=False) == pytest.approx(brute_chamfer(a, b, squared=False), rel=1e-9)
    assert chamfer_distance(b, a) == pytest.approx(chamfer_distance(a, b), rel=1e-12)
    assert chamfer_distance(a, a) == 0.0
    line = torch.stack([torch.arange(10.0), torch.zeros(10), torch.zeros(10)], 1)  # points 1 apart
    assert chamfer_distance(line, line + torch.tensor([0.0, 0.0, 0.1])) == pytest.approx(0.02, rel=1e-6)
    assert chamfer_distance(line, line + torch.tensor([0.3, 0.0, 0.0]), squared=False) == pytest.approx(0.6, rel=1e-6)
    with pytest.raises(ValueError):
        chamfer_distance(a, torch.zeros(0, 3))


@pytest.fixture(scope="module")
def reference():
    pytest.importorskip("build123d")
    from unitok.data.cad import cad_dataset
    return cad_dataset(1, seed=3, num_points=2000)[0]


def test_invalid_ratio(reference):
    valid = CADProgram.from_commands(reference.commands)
    zero = reference.commands.clone()
    zero[zero[:, 0] == EXT, 13] = 128  # zero extrude
    malformed = torch.tensor([row(LINE, 1, 2), row(EOS)])
    assert invalid_ratio([valid, zero, malformed, reference.commands]) == 0.5
    assert invalid_ratio([valid]) == 0.0
    with pytest.raises(ValueError):
        invalid_ratio([])


def test_cad_metrics(reference):
    metrics = CADMetrics()
    same = metrics(reference, reference.commands)
    assert same["command_accuracy"] == same["parameter_accuracy"] == 1.0 and same["invalid"] == 0.0
    assert same["chamfer_skipped"] is None and 0 < same["chamfer_distance"] < 2e-3  # sampling noise only
    moved = reference.commands.clone()
    moved[moved[:, 0] == EXT, 9] += 20  # shift every sketch by 20/128 along x
    shifted = metrics(reference, moved)
    assert shifted["chamfer_distance"] > 5 * same["chamfer_distance"]
    assert shifted["parameter_accuracy"] < 1.0 and shifted["command_accuracy"] == 1.0
    broken = reference.commands.clone()
    broken[broken[:, 0] == EXT, 13] = 128
    failed = metrics(reference, broken)
    assert failed["invalid"] == 1.0 and failed["chamfer_distance"] is None
    assert "zero extrude" in failed["chamfer_skipped"] and "zero extrude" in failed["invalid_reason"]
    unparsable = metrics(reference, torch.tensor([row(LINE, 1, 2)]))
    assert unparsable["invalid"] == 1.0 and "SOL" in unparsable["chamfer_skipped"]
