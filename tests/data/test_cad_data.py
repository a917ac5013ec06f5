"""DeepCAD-style programs: exact encoding, geometry against closed-form volumes, validity checks (extra `data-cad`)."""

import math
import re

import numpy as np
import pytest
import torch

pytest.importorskip("build123d")

from unitok.data.cad import (ARC, CIRCLE, CUT, EXT, INTERSECT, JOIN, LINE, PLANES, SOL, SYMMETRIC, TWO_SIDES,
                             CADProgram, Curve, Extrude, cad_dataset, export, plane_axes, program_to_solid,
                             random_program, sample_surface, validate_program)

SIZE = 64  # sketch size s = 64/128 = 0.5, so one grid unit is 0.5/95
UNIT = 0.5 / 95


def rectangle(w, h, x0=128, y0=128):
    return [Curve(LINE, x0 + w, y0), Curve(LINE, x0 + w, y0 + h), Curve(LINE, x0, y0 + h), Curve(LINE, x0, y0)]


def box(w=95, h=60, e1=160, holes=(), plane="XY", **kwargs):
    """A w×h (grid units) rectangle at the sketch start, with circular holes (x, y, r), extruded by (e1 − 128)/128."""
    loops = [rectangle(w, h)] + [[Curve(CIRCLE, x, y, r=r)] for x, y, r in holes]
    return Extrude(loops, *PLANES[plane], 128, 128, 128, SIZE, e1, **kwargs)


def volume(program):
    return program_to_solid(CADProgram(program)).volume


@pytest.fixture(scope="module")
def items():
    return cad_dataset(6, seed=0, num_points=500)


def test_box_and_holes_match_closed_form():
    w, h, d = 95 * UNIT, 60 * UNIT, 32 / 128
    assert volume([box()]) == pytest.approx(w * h * d, rel=1e-9)
    r = 10 * UNIT
    holed = CADProgram([box(holes=[(175, 150, 10), (145, 150, 8)])])
    assert program_to_solid(holed).volume == pytest.approx(w * h * d - math.pi * (r ** 2 + (8 * UNIT) ** 2) * d,
                                                           rel=1e-9)
    vertices, triangles = program_to_solid(holed).tessellate(0.002)  # the mesh volume agrees within tessellation
    corners = np.array([tuple(v) for v in vertices])[np.asarray(triangles)]
    mesh_volume = np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum() / 6
    assert mesh_volume == pytest.approx(w * h * d - math.pi * (r ** 2 + (8 * UNIT) ** 2) * d, rel=1e-2)


def test_extent_types_planes_and_booleans():
    w, h = 95 * UNIT, 60 * UNIT
    assert volume([box(e1=96)]) == pytest.approx(w * h * 0.25, rel=1e-9)  # negative one-sided extent
    assert volume([box(extent=SYMMETRIC)]) == pytest.approx(w * h * 0.5, rel=1e-9)
    assert volume([box(e2=144, extent=TWO_SIDES)]) == pytest.approx(w * h * 0.375, rel=1e-9)
    bounds = program_to_solid(CADProgram([box(plane="XZ")])).bounding_box()  # x → x, y → z, normal −y
    assert [bounds.min.X, bounds.min.Y, bounds.min.Z] == pytest.approx([0, -0.25, 0], abs=1e-9)
    assert [bounds.max.X, bounds.max.Y, bounds.max.Z] == pytest.approx([w, 0, h], abs=1e-9)
    for theta, phi, gamma in PLANES.values():
        x, y, n = plane_axes(theta, phi, gamma)
        assert np.allclose(np.cross(x, y), n) and np.isclose(np.linalg.norm(n), 1)
    boss = Extrude([[Curve(CIRCLE, 150, 150, r=20)]], *PLANES["XY"], 128, 128, 160, SIZE, 144, op=JOIN)
    assert volume([box(), boss]) == pytest.approx(w * h * 0.25 + math.pi * (20 * UNIT) ** 2 * 0.125, rel=1e-9)
    hole = Extrude([[Curve(CIRCLE, 150, 150, r=10)]], *PLANES["XY"], 128, 128, 120, SIZE, 176, op=CUT)
    assert volume([box(), hole]) == pytest.approx(w * h * 0.25 - math.pi * (10 * UNIT) ** 2 * 0.25, rel=1e-9)
    half = Extrude([rectangle(95, 30)], *PLANES["XY"], 128, 128, 120, SIZE, 176, op=INTERSECT)
    assert volume([box(), half]) == pytest.approx(w * h * 0.25 / 2, rel=1e-9)


def test_arcs_make_a_stadium():
    length, radius = 60, 20  # grid units: straight sides and end-cap radius
    stadium = [Curve(LINE, 128 + length, 128), Curve(ARC, 128 + length, 128 + 2 * radius, 128, 1),
               Curve(LINE, 128, 128 + 2 * radius), Curve(ARC, 128, 128, 128, 1)]
    ext = Extrude([stadium], *PLANES["XY"], 128, 128, 128, SIZE, 160)
    area = (length * 2 * radius + math.pi * radius ** 2) * UNIT ** 2
    assert volume([ext]) == pytest.approx(area * 0.25, rel=1e-9)


def test_commands_round_trip_exactly(items):
    for item in items:
        program = CADProgram.from_commands(item.commands)
        assert torch.equal(program.to_commands(), item.commands)
        assert CADProgram.from_commands(program.to_commands()) == program
    commands = items[0].commands
    assert commands.dtype == torch.long and commands.shape[1] == 17 and commands[-1, 0] == 3  # ends with EOS
    assert ((commands[:, 1:] >= -1) & (commands[:, 1:] <= 255)).all()
    padded = torch.cat([commands, commands[-1:].expand(5, -1)])  # rows after the first EOS are padding
    assert CADProgram.from_commands(padded) == CADProgram.from_commands(commands)


def test_generated_programs_are_valid_and_deterministic(items):
    again = cad_dataset(3, seed=0, num_points=500)
    for item in items:
        assert validate_program(CADProgram.from_commands(item.commands)) is None
        assert item.points.shape == (500, 3) and item.points.dtype == torch.float32
        assert item.metadata["volume"] > 0 and 1 <= item.metadata["num_extrudes"] <= 3
        assert item.points.abs().max() < 1.0  # inside the normalised cube
    for a, b in zip(again, items):
        assert a.name == b.name and torch.equal(a.commands, b.commands) and torch.equal(a.points, b.points)
    assert not torch.equal(cad_dataset(1, seed=1, num_points=10)[0].commands, items[0].commands)
    rng = np.random.default_rng(5)
    programs = [random_program(rng) for _ in range(12)]
    assert all(validate_program(p) is None for p in programs)
    assert {len(p.extrudes) for p in programs} >= {1, 2, 3}
    assert any(c.kind == ARC for p in programs for e in p.extrudes for loop in e.loops for c in loop)


def test_surface_samples_lie_on_the_surface():
    solid = program_to_solid(CADProgram([box()]))
    points = sample_surface(solid, 3000, seed=1)
    assert torch.equal(points, sample_surface(solid, 3000, seed=1))
    assert not torch.equal(points, sample_surface(solid, 3000, seed=2))
    size = torch.tensor([95 * UNIT, 60 * UNIT, 0.25])
    gap = torch.minimum(points.double(), size - points.double()).abs().min(1).values  # distance to the nearest face
    assert gap.max() < 1e-6 and (points > -1e-6).all() and (points < size + 1e-6).all()
    side_area = 2 * (size[0] * size[1]).item()  # the two large faces hold their share of the area
    share = ((points[:, 2] < 1e-6) | (points[:, 2] > 0.25 - 1e-6)).float().mean().item()
    total = side_area + 2 * 0.25 * (size[0] + size[1]).item()
    assert share == pytest.approx(side_area / total, abs=0.03)


@pytest.mark.parametrize("program, reason", [
    ([box(e1=128)], "zero extrude"),
    ([Extrude([[Curve(LINE, 200, 200), Curve(LINE, 200, 128), Curve(LINE, 128, 200), Curve(LINE, 128, 128)]],
              *PLANES["XY"], 128, 128, 128, SIZE, 160)], "self-intersecting"),
    ([box(holes=[(240, 240, 10)])], "outside"),
    ([box(holes=[(220, 150, 10)])], "intersect"),
    ([box(holes=[(160, 150, 10), (165, 150, 3)])], "intersect|nested"),
    ([box(holes=[(160, 150, 0)])], "out of range"),
    ([Extrude([rectangle(72, 72)[:1] + rectangle(72, 72)], *PLANES["XY"], 128, 128, 128, SIZE, 160)],
     "zero-length"),
    ([Extrude([[Curve(LINE, 200, 128), Curve(LINE, 128, 128)]], *PLANES["XY"], 128, 128, 128, SIZE, 160)],
     "zero-area"),
    ([Extrude([[Curve(CIRCLE, 150, 150, r=10), Curve(LINE, 1, 2)]], *PLANES["XY"], 128, 128, 128, SIZE, 160)],
     "alone"),
    ([box(), Extrude([[Curve(CIRCLE, 20, 20, r=5)]], *PLANES["XY"], 128, 128, 128, SIZE, 160, op=INTERSECT)],
     "empty"),
    ([], "no extrusion"),
])
def test_invalid_programs_are_detected(program, reason):
    found = validate_program(CADProgram(program))
    assert found is not None and re.search(reason, found), found
    with pytest.raises(ValueError, match="invalid CAD program"):
        program_to_solid(CADProgram(program))


def test_malformed_command_sequences():
    pad = [-1] * 16
    with pytest.raises(ValueError, match="before any SOL"):
        CADProgram.from_commands([[LINE, 1, 2] + [-1] * 14])
    with pytest.raises(ValueError, match="without a closing Ext"):
        CADProgram.from_commands([[SOL] + pad, [CIRCLE, 1, 2, -1, -1, 3] + [-1] * 11])
    with pytest.raises(ValueError, match="Ext without a sketch"):
        CADProgram.from_commands([[EXT] + pad])
    with pytest.raises(ValueError, match="unknown command"):
        CADProgram.from_commands([[9] + pad])
    with pytest.raises(ValueError, match=r"\(num_commands, 17\)"):
        CADProgram.from_commands(torch.zeros(3, 5, dtype=torch.long))


def test_export(tmp_path):
    solid = program_to_solid(CADProgram([box()]))
    export(solid, tmp_path / "part.stl")
    export(solid, tmp_path / "part.step")
    assert (tmp_path / "part.stl").stat().st_size > 0 and b"ISO-10303" in (tmp_path / "part.step").read_bytes()[:100]
