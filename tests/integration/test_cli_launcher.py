"""The installed `ctrctl`/`ctrd-runtime`/`ctrd` launcher (scripts/bin/ctrctl): in a real virtual
environment, it runs the entry point with site's paths but without other packages' .pth import
lines, falls back to the full site when the entry needs them, and dispatches on its name."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "scripts" / "bin" / "ctrctl"

# A stand-in entry point: it reports how it was started and exits with a code of its own.
FAKE_MAIN = '''import sys
def main():
    print("no_site=%d argv=%s" % (sys.flags.no_site, sys.argv[1:]))
    return 7
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("launcher")
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root / "venv")
    return root


def _site_packages(venv_dir: Path) -> Path:
    return venv_dir / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"


def _install(env: Path, name: str, package: str, pth: str, main: str = FAKE_MAIN) -> tuple[Path, Path]:
    """The launcher as `name` in the venv, a package `package` with a stand-in `main` outside it,
    and one .pth file in site-packages with the given text ({src} is the package's parent)."""
    src = env / f"src-{name}-{package}"
    (src / package).mkdir(parents=True, exist_ok=True)
    (src / package / "__init__.py").write_text("")
    (src / package / ("cli.py" if package == "runtime" else "main.py")).write_text(main)
    sp = _site_packages(env / "venv")
    for old in sp.glob("_test_*.pth"):
        old.unlink()
    (sp / f"_test_{name}.pth").write_text(pth.format(src=src, marker=env / "marker"))
    script = env / "venv" / "bin" / name
    shutil.copy(LAUNCHER, script)
    return script, env / "marker"


def test_path_lines_are_honoured_and_import_lines_are_not_run(env: Path) -> None:
    script, marker = _install(env, "ctrctl", "ctrctl",
                              "{src}\nimport pathlib; pathlib.Path('{marker}').write_text('ran')\n")
    r = subprocess.run([str(script), "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 7, r.stderr
    assert r.stdout == "no_site=1 argv=['ps', '-a', '--format', '{{.Names}}']\n"
    assert not marker.exists()  # another package's start-up code did not run


def test_an_entry_only_an_import_line_can_reach_falls_back_to_the_full_site(env: Path) -> None:
    script, marker = _install(env, "ctrd-runtime", "runtime",
                              "import sys; sys.path.append('{src}'); open('{marker}', 'w').close()\n")
    r = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 7, r.stderr
    assert r.stdout == "no_site=1 argv=['--version']\n"  # the name chose runtime.cli
    assert marker.exists()
    marker.unlink()


def test_as_ctrd_it_runs_the_daemon_s_entry_under_the_daemon_s_process_name(env: Path) -> None:
    main = FAKE_MAIN.replace('print("no_site', 'print(open("/proc/self/comm").read().strip(), "no_site')
    # the stand-in daemon beside the project's real ctrd package (the launcher names the process with ctrd.libc)
    script, _ = _install(env, "ctrd", "daemon", f"{{src}}\n{ROOT / 'protos'}\n", main=main)
    r = subprocess.run([str(script), "--root", "/x"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 7, r.stderr
    assert r.stdout == "ctrd no_site=1 argv=['--root', '/x']\n"  # not python3: ps and pgrep see ctrd


def test_the_installed_commands_are_the_launcher() -> None:
    for name in ("ctrctl", "ctrd-runtime", "ctrd"):
        installed = Path(sys.executable).parent / name
        if not installed.exists():
            pytest.skip(f"{name} is not installed beside {sys.executable}")
        assert installed.read_bytes() == LAUNCHER.read_bytes(), installed
    r = subprocess.run([str(Path(sys.executable).parent / "ctrd-runtime"), "--version"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("ctrd-runtime version "), r.stderr
    r = subprocess.run([str(Path(sys.executable).parent / "ctrd"), "--version"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("ctrd "), r.stderr


def test_the_commands_on_path_are_the_launcher_naming_this_interpreter() -> None:
    """scripts/install-deps.sh puts ctrctl, ctrd-runtime and ctrd in /usr/local/bin as copies of the
    launcher whose `py=` line names the venv's python3 (a symlink would send the launcher looking
    for python3 beside the link), and the venv runs on Debian's python3."""
    venv_python = Path(sys.executable).parent / "python3"
    for name in ("ctrctl", "ctrd-runtime", "ctrd"):
        on_path = Path("/usr/local/bin") / name
        if not on_path.exists():
            pytest.skip(f"{on_path} is not installed (scripts/install-deps.sh puts it there)")
        text = on_path.read_text()
        assert f"\npy={venv_python}\n" in text, on_path
        assert text.replace(f"\npy={venv_python}\n", '\npy="${0%/*}/python3"\n') == LAUNCHER.read_text(), on_path
    assert venv_python.resolve() == Path("/usr/bin/python3").resolve()
    # found without the venv on PATH, and running this interpreter (`python:` is its version)
    r = subprocess.run(["ctrd-runtime", "--version"], capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/local/bin:/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert f"python: {sys.version.split()[0]}\n" in r.stdout


# How the entry point ends -> (exit status, stdout, stderr) the launcher must give, as
# sys.exit(main()) would: it exits without the interpreter's finalization (scripts/bin/ctrctl's
# _finish), so what finalization did (flushing, atexit handlers, waiting for threads) is checked.
ENDINGS = {
    "return": ("def main():\n    return 3\n", (3, "", "")),
    "return None": ("def main():\n    pass\n", (0, "", "")),
    "sys.exit(code)": ("import sys\ndef main():\n    sys.exit(4)\n", (4, "", "")),
    "sys.exit(text)": ("import sys\ndef main():\n    sys.exit('bad flag')\n", (1, "", "bad flag\n")),
    "status above 255": ("def main():\n    return 257\n", (1, "", "")),
    "unflushed output": ("import sys\ndef main():\n    sys.stdout.write('x' * 100000)\n"
                         "    sys.stderr.write('no newline')\n", (0, "x" * 100000, "no newline")),
    "atexit handler": ("import atexit, sys\ndef main():\n    atexit.register(lambda: print('at exit'))\n"
                       "    return 5\n", (5, "at exit\n", "")),
    "thread still running": ("import threading, time\ndef main():\n"
                             "    threading.Thread(target=lambda: (time.sleep(0.2), print('thread done'))).start()\n"
                             "    return 6\n", (6, "thread done\n", "")),
}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_the_exit_is_what_sys_exit_of_the_entry_would_give(env: Path, ending: str) -> None:
    main, expected = ENDINGS[ending]
    script, _ = _install(env, "ctrctl", "ctrctl", "{src}\n", main=main)
    r = subprocess.run([str(script)], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == expected
