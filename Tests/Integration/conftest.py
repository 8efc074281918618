"""Fixtures for the mcpd integration tests.

Run from the repository root after `swift build`:

    .venv/bin/python -m pytest Tests/Integration -q

The mcpd binary is $MCPD_BIN, else <repo>/.build/debug/mcpd. Backends are run with
sys.executable, so the interpreter running pytest must have the `mcp` SDK installed.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mcpd_helpers import (  # noqa: E402
    BACKENDS,
    REPO_ROOT,
    LineProcess,
    _cmdline,
    pid_is_alive,
    recorded_pids,
    server_entry,
    to_yaml,
    wait_pids_dead,
)


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own state directory (XDG_STATE_HOME/mcpd): no catalog or run record
    of one test reaches another, and none lands in the user's home."""
    home = tmp_path / "state-home"
    home.mkdir()
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def mcpd_bin() -> str:
    path = Path(os.environ.get("MCPD_BIN") or REPO_ROOT / ".build" / "debug" / "mcpd")
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"mcpd binary not found or not executable at {path}. "
            "Run `swift build` in the repository root first (or set MCPD_BIN to the binary).",
            pytrace=False,
        )
    return str(path)


@pytest.fixture
def piddir(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "pids"
    d.mkdir()
    yield d
    # Never leak a backend into later tests, whatever the test asserted.
    for pid in recorded_pids(d):
        if pid_is_alive(pid) and str(BACKENDS) in _cmdline(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """write_config(content, name="mcpd.yaml"): a dict is written as YAML (or JSON for *.json), a str verbatim."""

    def write(content: dict[str, Any] | str, name: str = "mcpd.yaml") -> Path:
        path = tmp_path / name
        if isinstance(content, str):
            text = content
        elif name.endswith(".json"):
            import json

            text = json.dumps(content, indent=2)
        else:
            text = to_yaml(content)
        path.write_text(text + ("" if text.endswith("\n") else "\n"))
        return path

    return write


@pytest.fixture
def standard_config(write_config: Callable[..., Path], piddir: Path, tmp_path: Path) -> Path:
    """alpha and beta, with every documented per-server key in use."""
    return write_config(
        {
            "servers": {
                "alpha": server_entry("alpha", piddir, enabled=True, timeout="30s"),
                "beta": server_entry("beta", piddir, cwd=str(tmp_path)),
            }
        }
    )


@pytest.fixture
def mcpd_env() -> dict[str, str]:
    return dict(os.environ)


@pytest.fixture
def assert_backends_dead(piddir: Path) -> Callable[..., dict[int, str]]:
    """assert_backends_dead(expect_at_least=0, timeout=5): poll until every recorded backend pid is gone."""

    def check(expect_at_least: int = 0, timeout: float = 5.0) -> dict[int, str]:
        return wait_pids_dead(piddir, timeout=timeout, expect_at_least=expect_at_least)

    return check


@pytest.fixture
def raw_mcpd(mcpd_bin: str, tmp_path: Path, mcpd_env: dict[str, str]) -> Iterator[Callable[..., LineProcess]]:
    """raw_mcpd(config, *extra_args, env=None): `mcpd stdio --config config` driven by raw lines."""
    started: list[LineProcess] = []

    def start(config: Path, *extra_args: str, env: dict[str, str] | None = None) -> LineProcess:
        p = LineProcess(
            [mcpd_bin, "stdio", "--config", str(config), *extra_args],
            stderr_path=tmp_path / f"mcpd-{len(started)}.stderr",
            env=env if env is not None else mcpd_env,
        )
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


@pytest.fixture
def raw_backend(tmp_path: Path, mcpd_env: dict[str, str], piddir: Path) -> Iterator[Callable[[str], LineProcess]]:
    """raw_backend(name): a backend run directly (no mcpd), driven by raw lines."""
    started: list[LineProcess] = []

    def start(name: str) -> LineProcess:
        env = dict(mcpd_env, MCPD_TEST_PIDDIR=str(piddir))
        p = LineProcess(
            [sys.executable, str(BACKENDS / f"{name}.py")],
            stderr_path=tmp_path / f"direct-{name}-{len(started)}.stderr",
            env=env,
        )
        started.append(p)
        return p

    yield start
    for p in started:
        p.close_stdin()
        if p.wait(5) is None:
            p.kill()
        p.kill()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if report.when == "call" and report.failed:
        tmp = item.funcargs.get("tmp_path") if hasattr(item, "funcargs") else None
        if isinstance(tmp, Path):
            for path in sorted(tmp.glob("*.stderr")):
                text = path.read_text(errors="replace")
                report.sections.append((f"stderr of {path.name}", text[-6000:] or "<empty>"))
    return report
