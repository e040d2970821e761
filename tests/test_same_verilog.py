"""ci/same_verilog.py, the byte-identity check of refactors: its config list covers the named
corners and goals, and it finds equal hashes where the code is the same and different ones
where the config differs."""

import pytest

from hamattn.bench.goals import GOALS
from hamattn.ci import same_verilog as sv
from hamattn.verif.corners import CORNER, CORNER_W16, SWEEP

SMALL = ["b1-d1-w2-N1-linear", "b1-d3-w2-N1-topk-k1-P1"]


def test_configs_cover_the_sweep_corners_and_goals():
    listed = list(sv.CONFIGS.values())
    for params in SWEEP + [CORNER, CORNER_W16]:
        assert params in listed, f"{params} (tests/test_cocotb.py) is not in CONFIGS"
    for goal, (_, base, grid) in GOALS.items():    # each goal in one of its foldings at least
        assert any(all(c.get(k) == v for k, v in base.items()) and set(c) - set(base) <= set(grid)
                   for c in listed), f"{goal} is not in CONFIGS"
    for mode in ("linear", "topk", "hsoftmax"):
        assert dict(mode=mode) in listed


def test_same_code_same_hashes_against_head(capsys, tmp_path):
    """Against HEAD (a real temporary worktree), the small configs give the same SHA-256 of
    the Verilog and the manifest, and the exit status is 0; a second run takes the base's
    digests from the cache and generates only the working tree's."""
    rows = sv.run("HEAD", SMALL, say=lambda s: None, cache=tmp_path)
    assert len(rows) == 4 and all(r[4] for r in rows)
    assert all(len(r[2]) == 64 for r in rows)
    assert sv.main(["--base", "HEAD", "--only", SMALL[0], "--cache", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 digests of base" in out and "[1/1 " in out
    assert "1 configs, 2 files: all the same" in out


def test_a_different_config_gives_different_hashes(tmp_path):
    root = sv.package_root(sv.REPO, tmp_path / "work")
    params = sv.CONFIGS[SMALL[0]]
    a = sv.digest(root, params)
    b = sv.digest(root, dict(params, seed=1))
    assert set(a) == set(sv.FILES)
    assert a[sv.FILES[0]] != b[sv.FILES[0]] and a[sv.FILES[1]] != b[sv.FILES[1]]
    # compare() reports the difference, and a failed generation is never "same"
    rows = sv.compare({"x": a}, {"x": b})
    assert [r[4] for r in rows] == [False, False]
    bad = sv.digest(root, dict(params, d=0))
    assert "error" in bad and "d" in bad["error"]
    assert not any(r[4] for r in sv.compare({"x": bad}, {"x": bad}))


def test_unknown_ref_is_refused():
    with pytest.raises(SystemExit, match="no-such-ref-xyz"):
        sv.run("no-such-ref-xyz", SMALL[:1], say=lambda s: None)
