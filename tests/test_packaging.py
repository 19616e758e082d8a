"""The built wheel is a whole Tidings: its console script, its migrations, nothing from the checkout.

The wheel is installed without its dependencies into a directory of its own (they are this test
run's), and run from elsewhere, so that the checkout cannot stand in for anything missing from it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        cwd=out,
        timeout=300,
    )
    (built,) = out.glob("tidings-*.whl")
    return built


def test_the_wheel_holds_every_migration_and_the_console_script(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        f"tidings/store/migrations/versions/{path.name}"
        for path in (ROOT / "tidings/store/migrations/versions").glob("*.py")
    }
    assert shipped and shipped <= names
    assert "tidings/store/migrations/env.py" in names
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    assert "tidings = tidings.cli.main:run" in zipfile.ZipFile(wheel).read(entry_points).decode()
    assert not any(name.startswith(("tests/", "bench/")) for name in names)


def test_the_installed_wheel_migrates_a_database_and_runs(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        timeout=300,
    )
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(site), "TIDINGS_HOME": str(home)}
    env.pop("TIDINGS_DATABASE_URL", None)

    def tidings(*args: str) -> str:
        # -P: the working directory is not put on the path; only the installed copy can be found.
        return subprocess.run(
            [sys.executable, "-P", "-m", "tidings", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout

    located = subprocess.run(
        [sys.executable, "-P", "-c", "import tidings; print(tidings.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert Path(located.strip()).is_relative_to(site)
    assert "serve" in tidings("--help")
    tidings("db", "upgrade")
    assert list(home.glob("*.db")), "the packaged migrations created no database"
