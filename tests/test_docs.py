"""The README and docs/ cannot drift: their measured tables are what bench/results gives, and
their commands and Python snippets run as written.

Tables: ``hamattn.ci.docs_tables`` renders every ``<!-- table:NAME -->`` block from the
benchmark JSON; a committed table that differs fails here (fix: ``make docs``).

Snippets: every fenced block tagged ``sh``, ``console`` or ``python`` is run, in order, per
Markdown file, in a fresh folder holding a ``.venv`` link to this environment (so
``.venv/bin/hamattn`` and ``. .venv/bin/activate`` work as written, and ``hamattn`` is on
PATH):
- ``sh``: run with bash (``-e``), must exit 0;
- ``console``: each ``$ command`` is run, and the lines shown after it must be exactly what it
  prints (stdout and stderr), whatever its exit status;
- ``python``: run with this interpreter, must exit 0.
Two comments put directly before a fence change that:
- ``<!-- doctest: parse -->`` for commands that take minutes (synthesis, sweeps, board builds,
  benchmarks, ``make demo``): ``hamattn ...`` lines are parsed by the real argument parser
  and their parameters built into a ``CoreConfig`` (a refused flag or value fails), ``make
  T`` lines are dry-run with ``make -n T`` in the repository (an unknown target fails),
  ``python -m hamattn.X ...`` lines by the ``build_parser()`` of module ``hamattn.X``;
  nothing is executed;
- ``<!-- doctest: skip: REASON -->`` for a block that cannot run here; the set is kept small
  (:data:`MAX_SKIPPED`) and each needs its reason.
Every other fenced block must say its language (``text``, ``json``, ...), so no command
escapes the check by an untagged fence.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from hamattn.ci import docs_tables
from hamattn.cli import build_parser
from hamattn.config import PARAMS, ConfigError
from hamattn.flags import config_from_args

ROOT = docs_tables.ROOT
DOCS = [p.relative_to(ROOT).as_posix() for p in docs_tables.doc_files()]
RUN = ("sh", "console", "python")
MAX_SKIPPED = 1
DIRECTIVE = re.compile(r"<!-- doctest: (parse|skip)(?:: (.+?))? -->")
FENCE = re.compile(r"^(`{3,})(\S*)\s*$")


# -- tables ----------------------------------------------------------------------------------

def test_tables_match_results():
    stale = docs_tables.check()
    assert not stale, "tables differ from bench/results (run `make docs`): " + ", ".join(
        f"{p.relative_to(ROOT)}:{name}" for p, name in stale)


def _param_rows(text):
    """{flag: {column: cell}} of the Markdown table whose first column is ``flag`` and that
    holds ``--head-dim`` (the parameters of SPEC §1)."""
    tables, header = [], None
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] \
            if line.startswith("|") else None
        if cells is None:
            header = None
        elif header is None:
            header = cells if cells[0] == "flag" else False
            tables.append({})
        elif header and not set(cells[0]) <= set("-: "):
            tables[-1][cells[0].strip("`")] = dict(zip(header, cells))
    return next(t for t in tables if "--head-dim" in t)


def _norm(text):
    return re.sub(r"[`\s]", "", text).replace("^", "**")


@pytest.mark.parametrize("page, range_col", [("README.md", "range"),
                                             ("docs/cli.md", "allowed")])
def test_parameter_tables_match_config(page, range_col):
    """The hand-written parameter tables say what config.PARAMS (the one table the
    validation, --help and the messages come from) says: every flag, its default and its
    range."""
    rows = _param_rows((ROOT / page).read_text())
    assert set(rows) == {p.flag for p in PARAMS}, f"{page}: the flags differ from PARAMS"
    for p in PARAMS:
        row = rows[p.flag]
        default = p.default_text or p.default
        shown = _norm(row["default"])
        assert shown == _norm(str(default)) or (p.kind is float and
                                                float(shown) == float(default)), (page, p.flag)
        if p.kind in (int, float):
            want = f"{p.lo}..{p.bound()}" if p.kind is int else f"{p.lo}<{p.name}<={p.hi}"
            assert _norm(row[range_col]).startswith(_norm(want)), (page, p.flag, want)
        elif p.choices:
            where = row[range_col] or row["meaning"]
            assert all(f"`{c}`" in where for c in p.choices), (page, p.flag)


def test_every_table_is_used():
    used = {m.group(1) for p in docs_tables.doc_files()
            for m in docs_tables.MARKER.finditer(p.read_text())}
    assert used == set(docs_tables.TABLES)


def _changed_readme():
    """README.md with one digit of the first row of its headline table changed."""
    readme = (ROOT / "README.md").read_text()
    m = next(m for m in docs_tables.MARKER.finditer(readme) if m.group(1) == "headline")
    first_row = m.group(2).index("\n", m.group(2).index("|---")) + 1
    at = m.start(2) + re.compile(r"\d").search(m.group(2), first_row).start()
    return readme, readme[:at] + str((int(readme[at]) + 1) % 10) + readme[at + 1:]


def test_table_check_detects_a_changed_number(tmp_path):
    """The check can fail: a number changed inside a committed table is reported by name,
    by the function and by ``--check`` (exit 1), and rewriting restores the committed text."""
    readme, changed = _changed_readme()
    doc = tmp_path / "README.md"
    doc.write_text(changed)
    assert docs_tables.check([doc]) == [(doc, "headline")]
    fixed, names = docs_tables.rewrite(changed)
    assert names == ["headline"] and fixed == readme
    r = subprocess.run([sys.executable, "-m", "hamattn.ci.docs_tables", "--check", str(doc)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "table:headline differs" in r.stderr, r.stderr


def test_table_markers_are_checked():
    with pytest.raises(docs_tables.DocsError, match="unknown table 'nope'"):
        docs_tables.rewrite("<!-- table:nope -->\nx\n<!-- /table:nope -->\n")
    with pytest.raises(docs_tables.DocsError, match="never closed"):
        docs_tables.rewrite("<!-- table:goals -->\nx\n")


def test_check_command_passes_on_the_committed_docs():
    r = subprocess.run([sys.executable, "-m", "hamattn.ci.docs_tables", "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_readme_is_a_front_page():
    """Depth belongs in docs/: the README stays a page read in a few minutes."""
    assert len((ROOT / "README.md").read_text().split("\n")) < 200


# -- snippets --------------------------------------------------------------------------------

def blocks(text):
    """[(line, language, directive, reason, body)] of every fenced block of a Markdown text."""
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(1), m.group(2), i
        j = i + 1
        while not lines[j].startswith(fence):
            j += 1
        prev = lines[start - 1] if start else ""
        d = DIRECTIVE.fullmatch(prev.strip())
        out.append((start + 1, lang, d and d.group(1), d and d.group(2),
                    "\n".join(lines[start + 1:j]) + "\n"))
        i = j + 1
    return out


def _doc_blocks(name):
    return blocks((ROOT / name).read_text())


def commands(body):
    """The commands of a shell block: continuation lines joined, comments dropped."""
    out, cur = [], ""
    for line in body.split("\n"):
        line = line.split(" #")[0].rstrip() if not line.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        if cur.strip():
            out.append(cur.strip())
        cur = ""
    return out


def parse_only(command):
    """Check one command without running it (see the module docstring)."""
    argv = shlex.split(command)
    if argv[0] == "make":
        r = subprocess.run(["make", "-n", "-C", str(ROOT), *argv[1:]],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"{command}: {r.stderr}"
        return
    if argv[0] == ".":
        assert argv[1] == ".venv/bin/activate"
        return
    parser = build_parser()
    if argv[:2] == ["python", "-m"] and argv[2].startswith("hamattn."):
        # a module of the package with a ``build_parser()`` of its own
        parser = getattr(importlib.import_module(argv[2]), "build_parser", None)
        assert parser, f"cannot parse-check {command!r}: {argv[2]} has no build_parser()"
        parser, argv = parser(), argv[2:]
    else:
        assert Path(argv[0]).name == "hamattn", f"cannot parse-check {command!r}"
    try:
        args = parser.parse_args(argv[1:])
    except SystemExit as e:
        pytest.fail(f"{command}: the parser refused it (exit {e.code})")
    if hasattr(args, "d"):
        try:
            config_from_args(args)
        except ConfigError as e:
            pytest.fail(f"{command}: {e}")


def _env(folder):
    (folder / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def run_block(lang, body, folder, env, where):
    if lang == "sh":
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", body], cwd=folder, env=env,
                           capture_output=True, text=True)
        assert r.returncode == 0, f"{where}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    elif lang == "python":
        r = subprocess.run([sys.executable, "-c", body], cwd=folder, env=env,
                           capture_output=True, text=True)
        assert r.returncode == 0, f"{where}:\n{r.stdout}\n{r.stderr}"
    else:                                                            # console
        for cmd, expected in console_steps(body):
            r = subprocess.run(["bash", "-c", cmd], cwd=folder, env=env,
                               capture_output=True, text=True)
            got = (r.stdout + r.stderr).rstrip("\n")
            assert got == expected, f"{where}: `{cmd}` printed\n{got}\nnot\n{expected}"


def console_steps(body):
    """[(command, expected output)] of a console block (``$ `` starts a command)."""
    steps = []
    for line in body.rstrip("\n").split("\n"):
        if line.startswith("$ "):
            steps.append([line[2:], []])
        else:
            assert steps, f"console block does not start with a command: {line!r}"
            steps[-1][1].append(line)
    return [(cmd, "\n".join(out)) for cmd, out in steps]


@pytest.mark.parametrize("name", DOCS)
def test_snippets_run(name, tmp_path):
    env = _env(tmp_path)
    for line, lang, directive, reason, body in _doc_blocks(name):
        where = f"{name}:{line}"
        assert lang, f"{where}: a fenced block says its language (text, json, sh, ...)"
        if lang not in RUN or directive == "skip":
            continue
        if directive == "parse":
            assert lang == "sh", f"{where}: only sh blocks can be parse-checked"
            for cmd in commands(body):
                parse_only(cmd)
        else:
            run_block(lang, body, tmp_path, env, where)


def test_skipped_snippets_are_few_and_justified():
    skipped = [(name, line, reason) for name in DOCS
               for line, lang, d, reason, _ in _doc_blocks(name) if d == "skip"]
    assert len(skipped) <= MAX_SKIPPED, skipped
    for name, line, reason in skipped:
        assert reason and len(reason) > 20, f"{name}:{line}: a skipped block says why"


def test_snippet_checks_can_fail(tmp_path):
    """A wrong flag, a wrong expected output and an unknown make target are each caught."""
    with pytest.raises(pytest.fail.Exception, match="refused"):
        parse_only("hamattn synth --head-dimm 4 --target xc7")
    with pytest.raises(pytest.fail.Exception, match="topk"):
        parse_only("hamattn sweep --seq-len 4 --topk 5")
    with pytest.raises(AssertionError):
        parse_only("make no-such-target")
    env = _env(tmp_path)
    with pytest.raises(AssertionError, match="printed"):
        run_block("console", "$ echo one\ntwo\n", tmp_path, env, "test")
    with pytest.raises(AssertionError, match="exit"):
        run_block("sh", "hamattn gen --head-dim 0 -o out\n", tmp_path, env, "test")
    assert [b[1:4] for b in blocks("<!-- doctest: parse -->\n```sh\nx\n```\n```text\ny\n```")
            ] == [("sh", "parse", None), ("text", None, None)]


# -- links -----------------------------------------------------------------------------------

#: pages written on other branches that the README and the docs index already link to (none
#: now: every branch is merged)
PENDING = set()
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading):
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path):
    return {slug(line.lstrip("#")) for line in path.read_text().split("\n")
            if line.startswith("#")}


def broken_links(page, root=ROOT):
    """The relative links of a Markdown page that name no file under ``root`` or, with
    ``#anchor``, no heading of it (pages of :data:`PENDING` may be missing)."""
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if path.relative_to(root).as_posix() in PENDING and not path.exists():
            continue
        if not path.exists() or (anchor and path.suffix == ".md"
                                 and anchor not in anchors(path)):
            broken.append(target)
    return broken


@pytest.mark.parametrize("name", DOCS)
def test_links_resolve(name):
    assert broken_links(ROOT / name) == [], name


def test_every_page_is_in_both_indexes():
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"README.md"}
    pages |= {Path(p).name for p in PENDING}
    readme = set(re.findall(r"\]\(docs/([\w.-]+\.md)\)", (ROOT / "README.md").read_text()))
    index = set(re.findall(r"\]\(([\w.-]+\.md)\)", (ROOT / "docs/README.md").read_text()))
    assert pages <= readme and pages <= index, (pages - readme, pages - index)


def test_link_check_can_fail(tmp_path):
    assert slug("The popcount tree (`--popcount`)") == "the-popcount-tree---popcount"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/a.md").write_text("# Title\n## Some part\n")
    page = tmp_path / "README.md"
    page.write_text("[ok](docs/a.md#some-part) [x](docs/b.md) [y](docs/a.md#nope) "
                    "[z](#title) [w](https://example.org)\n")
    assert broken_links(page, tmp_path) == ["docs/b.md", "docs/a.md#nope", "#title"]
