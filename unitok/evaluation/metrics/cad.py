"""CAD reconstruction metrics on DeepCAD-style command sequences (`unitok.data.cad`), following DeepCAD's evaluation
(`evaluation/evaluate_ae_acc.py`, `evaluate_ae_cd.py`):

- `token_accuracy`: ACC_cmd = fraction of positions whose command type matches; ACC_param = over the positions whose
  reference command is Line/Arc/Circle/Ext AND whose estimated type matches, the fraction of the parameters that the
  reference command uses (`PARAM_MASK`) with |Δ| < η (strict, η = 3 on 256 levels, i.e. off by at most 2), except the
  discrete ones — arc direction f, boolean b, extent type u — which must match exactly. Sequences are compared
  position by position after padding the shorter one with EOS rows; DeepCAD pads both to 60 rows, which also counts the
  padding as correct commands (pass `pad_to=60` to reproduce that).
- `chamfer_distance`: DeepCAD's convention, mean squared nearest-neighbour distance from a to b plus from b to a
  (no square root; DeepCAD reports the median over shapes ×10³, on 2000 points in the normalised cube).
- `invalid_ratio`: fraction of decoded programs that fail to parse or to build a valid solid (`validate_program`).
"""

import math

import torch

from ...data.cad import ARC, CIRCLE, EOS, EXT, LINE, NUM_PARAMS, PARAM_MASK, CADProgram, program_to_solid
from ...data.cad import sample_surface, validate_program
from ...data.items import CADItem

TOLERANCE = 3
EXACT = {ARC: [3], EXT: [14, 15]}  # parameter slots compared exactly: arc direction f; boolean b and extent type u


def _pad(commands: torch.Tensor, length: int) -> torch.Tensor:
    eos = torch.tensor([EOS] + [-1] * NUM_PARAMS, dtype=torch.long).expand(length - len(commands), -1)
    return torch.cat([commands.long(), eos])


def token_accuracy(ref_commands, est_commands, tolerance: int = TOLERANCE, pad_to: int | None = None) -> dict:
    """{"command_accuracy", "parameter_accuracy" (nan when no parameter is scored), "num_parameters"}."""
    ref, est = torch.as_tensor(ref_commands), torch.as_tensor(est_commands)
    length = max(len(ref), len(est), pad_to or 0)
    ref, est = _pad(ref, length), _pad(est, length)
    same_type = ref[:, 0] == est[:, 0]
    scored = same_type & torch.isin(ref[:, 0], torch.tensor([LINE, ARC, CIRCLE, EXT]))
    exact = torch.zeros(length, NUM_PARAMS, dtype=torch.bool)
    for command, slots in EXACT.items():
        exact[(ref[:, 0] == command).nonzero(), slots] = True
    correct = torch.where(exact, ref[:, 1:] == est[:, 1:], (ref[:, 1:] - est[:, 1:]).abs() < tolerance)
    used = PARAM_MASK[ref[:, 0].clamp(0, len(PARAM_MASK) - 1)] & scored.unsqueeze(1)
    count = int(used.sum())
    return {"command_accuracy": same_type.double().mean().item(),
            "parameter_accuracy": correct[used].double().mean().item() if count else math.nan,
            "num_parameters": count}


def _reason(program) -> str | None:
    if not isinstance(program, CADProgram):
        try:
            program = CADProgram.from_commands(program)
        except ValueError as error:
            return f"cannot parse: {error}"
    return validate_program(program)


def invalid_ratio(programs) -> float:
    """Fraction of `programs` (CADProgram objects or command tensors) that are invalid."""
    programs = list(programs)
    if not programs:
        raise ValueError("invalid_ratio needs at least one program")
    return sum(_reason(p) is not None for p in programs) / len(programs)


def chamfer_distance(points_a, points_b, squared: bool = True, chunk: int = 4096) -> float:
    """mean_a min_b d(a, b) + mean_b min_a d(a, b), with d the squared (DeepCAD) or plain Euclidean distance;
    float64 `torch.cdist` in chunks of rows."""
    a, b = torch.as_tensor(points_a).double(), torch.as_tensor(points_b).double()
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
        raise ValueError(f"point sets must be non-empty (N, D) and (M, D), got {tuple(a.shape)} and {tuple(b.shape)}")

    def nearest(x, y):
        return torch.cat([torch.cdist(x[i:i + chunk], y).min(1).values for i in range(0, len(x), chunk)])

    da, db = nearest(a, b), nearest(b, a)
    if squared:
        da, db = da ** 2, db ** 2
    return (da.mean() + db.mean()).item()


class CADMetrics:
    """Metrics of one decoded command sequence against a reference `CADItem`:
    {"command_accuracy", "parameter_accuracy", "num_parameters", "invalid" (0/1), "invalid_reason",
    "chamfer_distance" (None when the decoded program is invalid), "chamfer_skipped" (the reason, or None)}.
    The decoded solid is sampled with as many points as the reference has, with a fixed seed."""

    def __init__(self, tolerance: int = TOLERANCE, pad_to: int | None = None, seed: int = 0):
        self.tolerance, self.pad_to, self.seed = tolerance, pad_to, seed

    def __call__(self, reference: CADItem, decoded_commands) -> dict:
        out = token_accuracy(reference.commands, decoded_commands, self.tolerance, self.pad_to)
        try:
            solid = program_to_solid(CADProgram.from_commands(decoded_commands))
            reason = None
        except ValueError as error:
            solid, reason = None, str(error)
        out.update(invalid=float(solid is None), invalid_reason=reason, chamfer_distance=None, chamfer_skipped=None)
        if solid is None:
            out["chamfer_skipped"] = f"decoded program is invalid: {reason}"
        else:
            points = sample_surface(solid, len(reference.points), seed=self.seed)
            out["chamfer_distance"] = chamfer_distance(reference.points, points)
        return out


__all__ = ["TOLERANCE", "CADMetrics", "chamfer_distance", "invalid_ratio", "token_accuracy"]
