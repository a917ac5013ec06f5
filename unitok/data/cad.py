"""DeepCAD-style sketch-and-extrude programs: command vocabulary, exact tensor encoding, geometry built with
build123d (OpenCASCADE), surface sampling, and a seeded generator of valid parts with exact ground truth.

Format: DeepCAD's (Wu et al., ICCV 2021, `cadlib/macro.py`), which CAD-Tokenizer's data descends from. One row of 17
integers per command, `[type, x, y, α, f, r, θ, φ, γ, px, py, pz, s, e1, e2, b, u]`, -1 in unused slots (`PARAM_MASK`):

| command | id | parameters used |
|---|---|---|
| Line | 0 | x, y: end point |
| Arc | 1 | x, y: end point; α: sweep angle; f: 1 = counter-clockwise, 0 = clockwise |
| Circle | 2 | x, y: centre; r: radius |
| EOS | 3 | — (end of program) |
| SOL | 4 | — (start of loop) |
| Ext | 5 | θ, φ, γ: sketch plane; px, py, pz: 3-D position of the sketch's start point; s: sketch size; e1, e2: extents; b: 0 new body, 1 join, 2 cut, 3 intersect; u: 0 one side, 1 symmetric, 2 two sides |

A program is `((SOL curve…)… Ext)…` then EOS. The first loop of a sketch is its outer boundary, the others are holes.
A loop starts where its last curve ends (curves store end points); a circle loop starts at (cx − r, cy).

Quantization (8 bits, DeepCAD's maps): sketch x, y, r live on a 256-grid where the sketch's start point is
(128, 128) and a grid unit is s/95 (DeepCAD scales each profile so its farthest coordinate from the start point is
0.75·128 − 1 = 95 units and stores that distance as s); α = q·2π/256; θ, φ, γ = q·π/128 − π;
px, py, pz, e1, e2 = (q − 128)/128 (the normalised cube [-1, 1)); s = q/128. Plane axes: normal
n = (sinθ cosφ, sinθ sinφ, cosθ), x = Rz(φ)·Ry(θ)·(cosγ, sinγ, 0), y = n × x. Extents: one side = prism e1·n
(e1 may be negative), symmetric = from −e1·n to e1·n, two sides = prisms e1·n and −e2·n fused. The first extrusion
makes the body whatever its b; later ones fuse (new, join), cut or intersect, as DeepCAD's `create_CAD` does.
Not reproduced from DeepCAD: its loop re-ordering (start at the bottom-left point) and its 60-command padding.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..evaluation.extras import require
from .items import CADItem

LINE, ARC, CIRCLE, EOS, SOL, EXT = range(6)
COMMANDS = ("Line", "Arc", "Circle", "EOS", "SOL", "Ext")
NEW, JOIN, CUT, INTERSECT = range(4)
ONE_SIDE, SYMMETRIC, TWO_SIDES = range(3)
NUM_PARAMS = 16
PARAM_MASK = torch.tensor([[1, 1, 0, 0, 0] + [0] * 11, [1, 1, 1, 1, 0] + [0] * 11, [1, 1, 0, 0, 1] + [0] * 11,
                           [0] * 16, [0] * 16, [0] * 5 + [1] * 11], dtype=torch.bool)
SKETCH_UNITS = 95  # grid units spanned by the sketch size s
PLANES = {"XY": (128, 128, 128), "XZ": (192, 64, 192), "YZ": (192, 128, 192)}  # (θ, φ, γ): normals +z, −y, +x


@dataclass(frozen=True)
class Curve:
    """One sketch command in grid units; unused fields stay -1."""

    kind: int
    x: int
    y: int
    sweep: int = -1
    ccw: int = -1
    r: int = -1


@dataclass
class Extrude:
    """A sketch (loops of curves) and its extrusion, all parameters quantized."""

    loops: list
    theta: int
    phi: int
    gamma: int
    px: int
    py: int
    pz: int
    size: int
    e1: int
    e2: int = 128
    op: int = NEW
    extent: int = ONE_SIDE

    def params(self) -> list[int]:
        return [self.theta, self.phi, self.gamma, self.px, self.py, self.pz, self.size, self.e1, self.e2, self.op,
                self.extent]


@dataclass
class CADProgram:
    extrudes: list = field(default_factory=list)

    def to_commands(self) -> torch.Tensor:
        """LongTensor `(num_commands, 17)`, ending with EOS."""
        rows = []
        for ext in self.extrudes:
            for loop in ext.loops:
                rows.append([SOL] + [-1] * NUM_PARAMS)
                for c in loop:
                    rows.append([c.kind, c.x, c.y, c.sweep if c.kind == ARC else -1, c.ccw if c.kind == ARC else -1,
                                 c.r if c.kind == CIRCLE else -1] + [-1] * 11)
            rows.append([EXT] + [-1] * 5 + ext.params())
        rows.append([EOS] + [-1] * NUM_PARAMS)
        return torch.tensor(rows, dtype=torch.long)

    @classmethod
    def from_commands(cls, commands) -> "CADProgram":
        """Parse rows up to the first EOS (later rows are padding). Raises ValueError on a malformed sequence;
        semantic problems (ranges, geometry) are left to `validate_program`."""
        commands = torch.as_tensor(commands)
        if commands.ndim != 2 or commands.shape[1] != 1 + NUM_PARAMS:
            raise ValueError(f"commands must be (num_commands, {1 + NUM_PARAMS}), got {tuple(commands.shape)}")
        extrudes, loops = [], None
        for i, row in enumerate(commands.tolist()):
            kind = row[0]
            if kind == EOS:
                break
            if kind == SOL:
                loops = loops or []
                loops.append([])
            elif kind in (LINE, ARC, CIRCLE):
                if not loops:
                    raise ValueError(f"row {i}: {COMMANDS[kind]} before any SOL")
                loops[-1].append(Curve(kind, row[1], row[2], *(row[3:5] if kind == ARC else (-1, -1)),
                                       row[5] if kind == CIRCLE else -1))
            elif kind == EXT:
                if not loops:
                    raise ValueError(f"row {i}: Ext without a sketch")
                extrudes.append(Extrude(loops, *row[6:]))
                loops = None
            else:
                raise ValueError(f"row {i}: unknown command type {kind}")
        if loops:
            raise ValueError("sketch without a closing Ext")
        return cls(extrudes)


# --------------------------------------------------------------------------------------------------- geometry
def plane_axes(theta: int, phi: int, gamma: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x axis, y axis, normal) of a quantized sketch plane."""
    t, p, g = (q * math.pi / 128 - math.pi for q in (theta, phi, gamma))
    normal = np.array([math.sin(t) * math.cos(p), math.sin(t) * math.sin(p), math.cos(t)])
    ref_x = np.array([math.cos(t) * math.cos(p), math.cos(t) * math.sin(p), -math.sin(t)])
    x_axis = math.cos(g) * ref_x + math.sin(g) * np.cross(normal, ref_x)
    return x_axis.round(12), np.cross(normal, x_axis).round(12), normal.round(12)


def _loop_start(loop) -> np.ndarray:
    last = loop[-1]
    return np.array([last.x - last.r, last.y] if last.kind == CIRCLE else [last.x, last.y], dtype=float)


def _arc(start, curve):
    """Centre and mid point of an arc from `start` to the curve's end point (grid units)."""
    end, angle = np.array([curve.x, curve.y], dtype=float), curve.sweep * 2 * math.pi / 256
    chord = end - start
    left = np.array([-chord[1], chord[0]]) / np.linalg.norm(chord)
    sign = 1.0 if curve.ccw else -1.0
    centre = (start + end) / 2 + sign * left * (np.linalg.norm(chord) / 2) / math.tan(angle / 2)
    return centre, centre + _rotate(start - centre, sign * angle / 2)


def _rotate(v, angle):
    return np.array([v[0] * math.cos(angle) - v[1] * math.sin(angle), v[0] * math.sin(angle) + v[1] * math.cos(angle)])


def _polyline(loop) -> np.ndarray:
    """Closed polyline `(m, 2)` of a loop (arcs and circles discretized), for the 2-D validity checks."""
    if loop[0].kind == CIRCLE:
        angles = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        return np.stack([loop[0].x + loop[0].r * np.cos(angles), loop[0].y + loop[0].r * np.sin(angles)], 1)
    points, start = [], _loop_start(loop)
    for c in loop:
        if c.kind == ARC:
            centre, _ = _arc(start, c)
            steps = max(2, math.ceil(c.sweep / 8))
            signed = (1 if c.ccw else -1) * c.sweep * 2 * math.pi / 256
            points += [centre + _rotate(start - centre, signed * k / steps) for k in range(1, steps)]
        start = np.array([c.x, c.y], dtype=float)
        points.append(start)
    return np.array(points)


def _segments(poly):
    return np.stack([poly, np.roll(poly, -1, axis=0)], 1)


def _crossings(p, q) -> np.ndarray:
    """`(len p, len q)` bool: which segments of p touch or cross which segments of q."""
    a, b, c, d = p[:, None, 0], p[:, None, 1], q[None, :, 0], q[None, :, 1]

    def cross(u, v):
        return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]

    straddle = (cross(b - a, c - a) * cross(b - a, d - a) <= 0) & (cross(d - c, a - c) * cross(d - c, b - c) <= 0)
    boxes = np.all(np.maximum(np.minimum(a, b), np.minimum(c, d)) <= np.minimum(np.maximum(a, b), np.maximum(c, d)),
                   -1)
    return straddle & boxes


def _inside(point, poly) -> bool:
    x, y = point
    xs, ys, xe, ye = poly[:, 0], poly[:, 1], np.roll(poly[:, 0], -1), np.roll(poly[:, 1], -1)
    hits = ((ys > y) != (ye > y)) & (x < xs + (y - ys) * (xe - xs) / np.where(ye == ys, 1, ye - ys))
    return bool(hits.sum() % 2)


def _loop_reason(loop) -> str | None:
    if not loop:
        return "empty loop"
    if any(c.kind == CIRCLE for c in loop) and len(loop) > 1:
        return "a circle must be alone in its loop"
    for c in loop:
        if not (0 <= c.x <= 255 and 0 <= c.y <= 255) or (c.kind == CIRCLE and not 1 <= c.r <= 255):
            return f"{COMMANDS[c.kind]} parameter out of range"
        if c.kind == ARC and not (1 <= c.sweep <= 255 and c.ccw in (0, 1)):
            return "arc sweep must be in 1..255 and its direction 0 or 1"
    if loop[0].kind == CIRCLE:
        return None
    if len(loop) < 2:
        return "a loop of lines and arcs needs at least two curves"
    ends = [_loop_start(loop)] + [np.array([c.x, c.y]) for c in loop]
    if any(np.array_equal(ends[i], ends[i + 1]) for i in range(len(loop))):
        return "zero-length curve"
    poly = _polyline(loop)
    i, j = np.nonzero(np.triu(_crossings(_segments(poly), _segments(poly)), 2))  # pairs of non-adjacent segments
    if np.any(~((i == 0) & (j == len(poly) - 1))):
        return "self-intersecting loop"
    if abs(np.sum(poly[:, 0] * np.roll(poly[:, 1], -1) - np.roll(poly[:, 0], -1) * poly[:, 1])) < 1e-6:
        return "degenerate (zero-area) loop"
    return None


def _extrude_reason(ext) -> str | None:
    if not all(0 <= v <= 255 for v in ext.params()[:9]) or ext.op not in range(4) or ext.extent not in range(3):
        return "Ext parameter out of range"
    if ext.size == 0:
        return "zero sketch size"
    if ext.e1 == 128 or (ext.extent == TWO_SIDES and ext.e2 == 128):
        return "zero extrude"
    if not ext.loops:
        return "empty sketch"
    polys = []
    for j, loop in enumerate(ext.loops):
        if reason := _loop_reason(loop):
            return f"loop {j}: {reason}"
        polys.append(_polyline(loop))
    for j, poly in enumerate(polys[1:], 1):
        for k, other in enumerate(polys[:j]):
            if _crossings(_segments(poly), _segments(other)).any():
                return f"loops {k} and {j} intersect"
            if k > 0 and (_inside(poly[0], other) or _inside(other[0], poly)):
                return f"loops {k} and {j} are nested holes"
        if not _inside(poly[0], polys[0]):
            return f"loop {j} (a hole) lies outside the outer loop"
    return None


def _face(ext):
    bd = require("build123d", "data-cad", "build123d")
    x_axis, y_axis, normal = plane_axes(ext.theta, ext.phi, ext.gamma)
    origin, unit = (np.array([ext.px, ext.py, ext.pz]) - 128) / 128, ext.size / 128 / SKETCH_UNITS

    def world(g):
        return tuple(origin + (g[0] - 128) * unit * x_axis + (g[1] - 128) * unit * y_axis)

    wires = []
    for loop in ext.loops:
        if loop[0].kind == CIRCLE:
            plane = bd.Plane(origin=world((loop[0].x, loop[0].y)), x_dir=tuple(x_axis), z_dir=tuple(normal))
            wires.append(bd.Wire([bd.Edge.make_circle(loop[0].r * unit, plane)]))
            continue
        edges, start = [], _loop_start(loop)
        for c in loop:
            end = np.array([c.x, c.y], dtype=float)
            if c.kind == LINE:
                edges.append(bd.Edge.make_line(world(start), world(end)))
            else:
                edges.append(bd.Edge.make_three_point_arc(world(start), world(_arc(start, c)[1]), world(end)))
            start = end
        wires.append(bd.Wire(edges))
    return bd.Face(wires[0], wires[1:]), normal


def _extrude_solid(ext):
    bd = require("build123d", "data-cad", "build123d")
    face, normal = _face(ext)
    e1, e2 = (ext.e1 - 128) / 128, (ext.e2 - 128) / 128
    if ext.extent == SYMMETRIC:
        return bd.Solid.extrude(bd.Pos(*(-e1 * normal)) * face, tuple(2 * e1 * normal))
    solid = bd.Solid.extrude(face, tuple(e1 * normal))
    return solid.fuse(bd.Solid.extrude(face, tuple(-e2 * normal))) if ext.extent == TWO_SIDES else solid


def _combine(body, solid, op):
    bd = require("build123d", "data-cad", "build123d")
    result = body.cut(solid) if op == CUT else body.intersect(solid) if op == INTERSECT else body.fuse(solid)
    if isinstance(result, list):  # build123d's intersect returns a ShapeList (empty when nothing is left)
        result = result[0] if len(result) == 1 else bd.Compound(result) if result else None
    return result


def _check(program: CADProgram):
    """(reason or None, solid or None)."""
    if not program.extrudes:
        return "no extrusion", None
    for k, ext in enumerate(program.extrudes):
        if reason := _extrude_reason(ext):
            return f"extrusion {k}: {reason}", None
    try:
        body = _extrude_solid(program.extrudes[0])
        for ext in program.extrudes[1:]:
            body = _combine(body, _extrude_solid(ext), ext.op)
            if body is None:
                return "empty solid", None
    except Exception as error:  # noqa: BLE001 — OpenCASCADE raises many exception types
        return f"build failed: {type(error).__name__}: {error}", None
    if body.volume < 1e-6:
        return "empty solid", None
    if not body.is_valid:
        return "invalid solid (OpenCASCADE shape check failed)", None
    return None, body


def validate_program(program: CADProgram) -> str | None:
    """Why the program is invalid (malformed, out-of-range parameter, zero extrude, degenerate or self-intersecting
    loop, hole outside its profile, failed or empty boolean result, invalid B-rep), or None."""
    return _check(program)[0]


def program_to_solid(program: CADProgram):
    """The build123d solid of a valid program; ValueError with the reason otherwise."""
    reason, solid = _check(program)
    if reason:
        raise ValueError(f"invalid CAD program: {reason}")
    return solid


def sample_surface(solid, num_points: int, seed: int = 0, tolerance: float = 0.002) -> torch.Tensor:
    """`(num_points, 3)` float32 points uniform on the surface: tessellate, then area-weighted triangle choice and
    uniform barycentric sampling. Deterministic for a seed."""
    vertices, triangles = solid.tessellate(tolerance, 0.1)
    corners = np.array([tuple(v) for v in vertices])[np.asarray(triangles)]  # (T, 3, 3)
    areas = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    rng = np.random.default_rng(seed)
    chosen = corners[rng.choice(len(areas), size=num_points, p=areas / areas.sum())]
    u, v = np.sqrt(rng.random(num_points))[:, None], rng.random(num_points)[:, None]
    points = (1 - u) * chosen[:, 0] + u * (1 - v) * chosen[:, 1] + u * v * chosen[:, 2]
    return torch.from_numpy(points).float()


def export(solid, path) -> None:
    """Write `.stl` or `.step` by the file suffix."""
    bd = require("build123d", "data-cad", "build123d")
    (bd.export_stl if str(path).lower().endswith(".stl") else bd.export_step)(solid, str(path))


# -------------------------------------------------------------------------------------------------- generator
def _snap(value: float) -> float:
    return round(value * 128) / 128


def _quantize(loops, plane: str, level: float, e1: float, e2: float = 0.0, op=NEW, extent=ONE_SIDE) -> Extrude:
    """Extrude from continuous loops in plane-local coordinates: [("line", end) | ("arc", end, sweep, ccw) |
    ("circle", centre, r)]; the sketch plane passes through level·normal."""
    x_axis, y_axis, normal = plane_axes(*PLANES[plane])
    last = loops[0][-1]
    start = np.array(last[1]) - ([last[2], 0] if last[0] == "circle" else 0)
    reach = 0.0  # DeepCAD's sketch size: the largest coordinate offset of the profile from its start point
    for loop in loops:
        previous = np.array(loop[-1][1]) - ([loop[-1][2], 0] if loop[-1][0] == "circle" else 0)
        for curve in loop:
            end = np.array(curve[1], dtype=float)
            reach = max(reach, np.abs(end - start).max() + (curve[2] if curve[0] == "circle" else 0.0))
            if curve[0] == "arc":  # the arc's mid point bounds the bulge of the arcs generated here
                mid = _arc(previous, Curve(ARC, *end, curve[2] / (2 * math.pi) * 256, curve[3]))[1]
                reach = max(reach, np.abs(mid - start).max())
            previous = end
    size = int(np.clip(round(reach * 128), 1, 255))
    unit = size / 128 / SKETCH_UNITS

    def curve(c):
        x, y = (int(np.clip(round(128 + (c[1][k] - start[k]) / unit), 0, 255)) for k in (0, 1))
        if c[0] == "circle":
            return Curve(CIRCLE, x, y, r=round(c[2] / unit))
        return Curve(ARC, x, y, round(c[2] / (2 * math.pi) * 256), int(c[3])) if c[0] == "arc" else Curve(LINE, x, y)

    q_loops = [[curve(c) for c in loop] for loop in loops]
    position = level * normal + start[0] * x_axis + start[1] * y_axis
    px, py, pz, q1, q2 = (int(np.clip(round((v + 1) * 128), 0, 255)) for v in (*position, e1, e2))
    return Extrude(q_loops, *PLANES[plane], px, py, pz, size, q1, q2, op, extent)


def _profile(rng, kind, cx, cy, a, b):
    """A closed counter-clockwise loop and the radius of a disc around (cx, cy) inside it."""
    if kind == "circle":
        return [("circle", (cx, cy), a)], a
    if kind == "polygon":
        n = int(rng.integers(3, 8))
        angles = rng.uniform() * 2 * np.pi + 2 * np.pi * (np.arange(n) + rng.uniform(-0.2, 0.2, n)) / n
        pts = np.stack([cx + a * np.cos(angles), cy + a * np.sin(angles)], 1)
        edges = np.roll(pts, -1, 0) - pts
        offsets = pts - [cx, cy]
        inradius = np.min(np.abs(edges[:, 0] * offsets[:, 1] - edges[:, 1] * offsets[:, 0]) / np.hypot(*edges.T))
        return [("line", tuple(p)) for p in np.roll(pts, -1, 0)], inradius
    if kind == "slot":
        b = min(b, 0.6 * a)
        return [("line", (cx + a - b, cy - b)), ("arc", (cx + a - b, cy + b), math.pi, 1),
                ("line", (cx - a + b, cy + b)), ("arc", (cx - a + b, cy - b), math.pi, 1)], b
    rc = rng.uniform(0.1, 0.4) * min(a, b) if kind == "rounded_rectangle" else 0.0
    corners = [(cx + a, cy - b, 0, 1), (cx + a, cy + b, -1, 0), (cx - a, cy + b, 0, -1), (cx - a, cy - b, 1, 0)]
    loop = []
    for x, y, dx, dy in corners:  # (dx, dy): direction of the next side
        if rc:
            loop += [("line", (x - dy * rc, y + dx * rc)), ("arc", (x + dx * rc, y + dy * rc), math.pi / 2, 1)]
        else:
            loop.append(("line", (x, y)))
    return loop, min(a, b)


def _candidate(rng, max_extrudes: int):
    kind = str(rng.choice(["rectangle", "rounded_rectangle", "polygon", "slot", "circle"]))
    plane = str(rng.choice(list(PLANES)))
    cx, cy = rng.uniform(-0.1, 0.1, 2)
    outer, inradius = _profile(rng, kind, cx, cy, rng.uniform(0.35, 0.7), rng.uniform(0.25, 0.6))
    loops = [outer]
    first_angle = rng.uniform(0, 2 * np.pi)
    for k in range(int(rng.choice(3, p=[0.4, 0.35, 0.25]))):
        radius = rng.uniform(0.1, 0.2) * inradius
        distance, angle = rng.uniform(0.5 * inradius + radius, 0.9 * inradius - radius), first_angle + k * np.pi
        loops.append([("circle", (cx + distance * math.cos(angle), cy + distance * math.sin(angle)), radius)])
    if rng.uniform() < 0.7:
        depth = _snap(rng.uniform(0.15, 0.6))
        bottom = _snap(-depth / 2)
        extrudes, top = [_quantize(loops, plane, bottom, depth)], bottom + depth
    else:
        half = _snap(rng.uniform(0.08, 0.3))
        extrudes, bottom, top = [_quantize(loops, plane, 0.0, half, extent=SYMMETRIC)], -half, half
    features = [kind]
    feature = str(rng.choice(["none", "boss", "pocket", "through"], p=[0.25, 0.35, 0.2, 0.2]))
    if max_extrudes > 1 and feature != "none":
        radius = rng.uniform(0.25, 0.45) * inradius
        if rng.uniform() < 0.5:
            sketch, inner = [[("circle", (cx, cy), radius)]], radius
        else:
            beta = rng.uniform(0.4, 1.2)
            loop, inner = _profile(rng, "rectangle", cx, cy, radius * math.cos(beta), radius * math.sin(beta))
            sketch = [loop]
        if feature == "boss":
            height = _snap(min(rng.uniform(0.1, 0.3), 0.9 - top))
            extrudes.append(_quantize(sketch, plane, top, height, op=JOIN))
            top += height
            if max_extrudes > 2 and rng.uniform() < 0.6:
                features.append("boss")
                sketch, feature = [[("circle", (cx, cy), rng.uniform(0.3, 0.7) * inner)]], "through"
        if feature == "pocket":
            extrudes.append(_quantize(sketch, plane, top, -_snap((top - bottom) * rng.uniform(0.3, 0.7)), op=CUT))
        elif feature == "through":
            extrudes.append(_quantize(sketch, plane, _snap((top + bottom) / 2), _snap((top - bottom) / 2 + 0.05),
                                      op=CUT, extent=SYMMETRIC))
        features.append(feature)
    return CADProgram(extrudes), features


def _random_valid(rng, max_extrudes: int = 3):
    for _ in range(20):
        program, features = _candidate(rng, max_extrudes)
        reason, solid = _check(program)
        if reason is None:
            return program, solid, features
    raise RuntimeError(f"no valid CAD program in 20 tries (last: {reason})")


def random_program(rng: np.random.Generator, max_extrudes: int = 3) -> CADProgram:
    """A valid program: a rectangle, rounded rectangle, polygon, slot or circle on an axis-aligned plane, with 0–2
    circular holes, extruded one-sided or symmetric; then optionally a boss (join) — possibly bored through —,
    a pocket or a through cut, so 1–3 extrusions. Drawn with `rng`; rejected draws are redrawn."""
    return _random_valid(rng, max_extrudes)[0]


def cad_dataset(num_items: int, seed: int = 0, num_points: int = 2000, max_extrudes: int = 3) -> list[CADItem]:
    """`num_items` generated parts with their surface samples; item i depends only on (seed, i)."""
    items = []
    for i in range(num_items):
        program, solid, features = _random_valid(np.random.default_rng([seed, i]), max_extrudes)
        items.append(CADItem(
            name=f"cad_s{seed}_{i:04d}", commands=program.to_commands(),
            points=sample_surface(solid, num_points, seed=seed * 1_000_003 + i),
            metadata={"features": features, "num_extrudes": len(program.extrudes), "volume": solid.volume,
                      "source": "synthetic DeepCAD-style program, geometry by build123d/OpenCASCADE"}))
    return items


__all__ = ["ARC", "CIRCLE", "COMMANDS", "CUT", "EOS", "EXT", "INTERSECT", "JOIN", "LINE", "NEW", "NUM_PARAMS",
           "ONE_SIDE", "PARAM_MASK", "PLANES", "SKETCH_UNITS", "SOL", "SYMMETRIC", "TWO_SIDES", "CADProgram", "Curve",
           "Extrude", "cad_dataset", "export", "plane_axes", "program_to_solid", "random_program", "sample_surface",
           "validate_program"]
