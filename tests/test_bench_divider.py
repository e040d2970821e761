"""bench/divider.py's command line: it takes no options, and says so instead of running the
whole benchmark (and rewriting its JSON) for a mistyped one."""

import pytest

from hamattn.bench import divider


def test_an_unknown_option_is_an_error_before_anything_runs(monkeypatch, capsys):
    monkeypatch.setattr(divider, "measure", lambda tmp: pytest.fail("the benchmark ran"))
    with pytest.raises(SystemExit) as e:
        divider.main(["--seeds", "3"])
    assert e.value.code == 2
    assert "unrecognized arguments: --seeds 3" in capsys.readouterr().err
