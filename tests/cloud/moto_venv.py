"""Where the moto venv lives, shared by moto_server.py and moto_scenarios.py.

`tests/setup` creates the venv (from requirements.txt beside this file) at
`${SKOOP_MOTO_VENV:-$HOME/.cache/skoop-test/moto-venv}`; these helpers find it again.
Standard library only: the scripts start under any `python3`.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def venv_dir(override=None):
    if override:
        return os.path.abspath(override)
    env = os.environ.get("SKOOP_MOTO_VENV")
    if env:
        return os.path.abspath(env)
    return os.path.join(os.path.expanduser("~"), ".cache", "skoop-test", "moto-venv")


def venv_python(override=None):
    return os.path.join(venv_dir(override), "bin", "python")


def missing_venv_message(override=None):
    return (
        f"moto venv not found at {venv_dir(override)} "
        "(run tests/setup, or set SKOOP_MOTO_VENV to a venv with "
        f"`pip install -r {os.path.join(HERE, 'requirements.txt')}`)"
    )


def reexec_in_venv(override=None):
    """Re-run the current script under the venv's python (when boto3 is not importable here)."""
    py = venv_python(override)
    if not os.path.exists(py):
        sys.exit(missing_venv_message(override))
    if os.path.realpath(sys.prefix) == os.path.realpath(venv_dir(override)):
        sys.exit(f"boto3 is not importable in {venv_dir(override)}: {missing_venv_message(override)}")
    os.execv(py, [py, os.path.abspath(sys.argv[0])] + sys.argv[1:])
