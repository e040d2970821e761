"""hamattn.synth.paths: the slowest paths of nextpnr's SDF, on a hand-written SDF whose arrival
times are worked out here, and on a real placement (tests/test_synth.py has that one)."""

import json

import pytest

from hamattn.synth import paths

# a -> (wire 500) -> lut.I0 -> (LUT 400) -> lut.O -> (wire 300) -> b.D   : 100+500+400+300+50
# a -> (wire 2000) -> b.E (clock enable)                                 : 100+2000+80
# c -> (wire 100) -> lut.I1 -> lut.O ...                                  : c is later (900)
# b -> (wire 10) -> r\.x.D  (escaped name)                                : 200+10+50
SDF = r"""(DELAYFILE
  (SDFVERSION "3.0")
  (DIVIDER /)
  (TIMESCALE 1ps)
  (CELL (CELLTYPE "top") (INSTANCE )
    (DELAY (ABSOLUTE
      (INTERCONNECT a/Q lut/I0 (500:500:500) (500:500:500))
      (INTERCONNECT c/Q lut/I1 (100:100:100) (100:100:100))
      (INTERCONNECT lut/O b/D (300:300:300) (300:300:300))
      (INTERCONNECT a/Q b/E (1000:1500:2000) (2000:2000:2000))
      (INTERCONNECT b/Q r\.x/D (10:10:10) (10:10:10)))))
  (CELL (CELLTYPE "FF") (INSTANCE a)
    (DELAY (ABSOLUTE (IOPATH CLK Q (100:100:100) (100:100:100))))
    (TIMINGCHECK (SETUPHOLD (posedge D) (posedge CLK) (50:50:50) (0:0:0))))
  (CELL (CELLTYPE "FF") (INSTANCE c)
    (DELAY (ABSOLUTE (IOPATH CLK Q (900:900:900) (900:900:900)))))
  (CELL (CELLTYPE "LUT") (INSTANCE lut)
    (DELAY (ABSOLUTE (IOPATH I0 O (400:400:400) (400:400:400))
                     (IOPATH I1 O (350:350:350) (350:350:350)))))
  (CELL (CELLTYPE "FF") (INSTANCE b)
    (DELAY (ABSOLUTE (IOPATH CLK Q (200:200:200) (200:200:200))))
    (TIMINGCHECK (SETUPHOLD (posedge D) (posedge CLK) (50:50:50) (0:0:0))
                 (SETUPHOLD (negedge E) (posedge CLK) (80:80:80) (0:0:0))))
  (CELL (CELLTYPE "FF") (INSTANCE r\.x)
    (DELAY (ABSOLUTE (IOPATH CLK Q (200:200:200) (200:200:200))))
    (TIMINGCHECK (SETUPHOLD (posedge D) (posedge CLK) (50:50:50) (0:0:0))))
)
"""


def test_arrival_plus_setup_one_path_per_end_cell():
    """b's worst input is its clock enable (100 + 2000 + 80 = 2180 ps: a delay triple's
    largest value); its D input (c's later start through the LUT: 900 + 100 + 350 + 300 +
    50 = 1700) is not listed again; r.x's name loses its escape."""
    top = paths.top_paths(paths.parse_sdf(SDF), 10)
    assert [(p["from"], p["to"], p["to_pin"], p["delay_ns"]) for p in top] == [
        ("a", "b", "E", 2.18), ("b", "r.x", "D", 0.26)]
    assert (top[0]["cells"], top[0]["ends"]) == (0, 1)
    assert [(s["cell"], s["pin"], s["at_ns"]) for s in top[0]["steps"]] == [
        ("a", "Q", 0.1), ("b", "E", 2.1)]


def test_the_later_start_sets_the_arrival_through_a_cell():
    """Without the enable wire, b's D input is its worst: c's start (900) beats a's (100)
    through the LUT, whose cell the path crosses."""
    sdf = SDF.replace("(INTERCONNECT a/Q b/E (1000:1500:2000) (2000:2000:2000))", "")
    top = paths.top_paths(paths.parse_sdf(sdf), 1)
    assert (top[0]["from"], top[0]["to"], top[0]["delay_ns"]) == ("c", "b", 1.7)
    assert top[0]["cells"] == 1
    assert [s["cell"] for s in top[0]["steps"]] == ["c", "lut", "lut", "b"]


def test_one_entry_per_last_net():
    """A second end cell on a's enable wire (a clock enable's fan-out) is counted in the
    entry of that net, not listed again; the slower of the two is the one listed."""
    sdf = SDF.replace("(INTERCONNECT b/Q", "(INTERCONNECT a/Q e/E (2100:2100:2100) (0:0:0))\n"
                      "      (INTERCONNECT b/Q").replace(
        "  (CELL (CELLTYPE \"FF\") (INSTANCE c)",
        "  (CELL (CELLTYPE \"FF\") (INSTANCE e)\n"
        "    (TIMINGCHECK (SETUPHOLD (posedge E) (posedge CLK) (80:80:80) (0:0:0))))\n"
        "  (CELL (CELLTYPE \"FF\") (INSTANCE c)")
    top = paths.top_paths(paths.parse_sdf(sdf), 10)
    assert [(p["to"], p["delay_ns"], p["ends"]) for p in top] == [("e", 2.28, 2), ("r.x", 0.26, 1)]


def test_count_and_through():
    g = paths.parse_sdf(SDF)
    assert len(paths.top_paths(g, 1)) == 1
    assert [p["to"] for p in paths.top_paths(g, 10, through="r.x")] == ["r.x"]
    assert paths.top_paths(g, 10, through="nowhere") == []


def test_unbalanced_sdf_is_refused():
    with pytest.raises(ValueError, match="unbalanced"):
        paths.parse_sdf(SDF + ")")
    with pytest.raises(ValueError, match="unbalanced"):
        paths.parse_sdf("(DELAYFILE (CELL")


def test_report_paths_drop_steps_and_need_a_file(tmp_path):
    sdf = tmp_path / "timing.sdf"
    assert paths.report_paths(sdf) is None
    sdf.write_text(SDF)
    rep = paths.report_paths(sdf, 5)
    assert rep == [{k: v for k, v in p.items() if k != "steps"}
                   for p in paths.top_paths(paths.parse_sdf(SDF), 5)]
    assert "steps" not in rep[0]


def test_command_line(tmp_path, capsys):
    """A build folder with one SDF is enough; --json prints the paths; a missing SDF is a
    clear error with exit status 2, no traceback."""
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "design.sdf").write_text(SDF)
    assert paths.main([str(tmp_path / "b"), "--top", "2", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "2.18 ns  a -> b.E" in out and "(+ 2.00)  b.E" in out
    assert paths.main([str(tmp_path / "b"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["to"] == "b"
    assert paths.main([str(tmp_path / "nothing")]) == 2
    assert "no SDF file at" in capsys.readouterr().err
    (tmp_path / "b" / "other.sdf").write_text(SDF)
    assert paths.main([str(tmp_path / "b")]) == 2
    assert "holds 2 SDF files" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        paths.main([str(tmp_path / "b"), "--top", "0"])
    assert "--top must be at least 1" in capsys.readouterr().err
