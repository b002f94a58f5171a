"""What a later test or helper process inherits from this one, and must find unchanged: signal
dispositions, the working directory and the environment."""
from __future__ import annotations

import os
import signal

GlobalState = tuple[dict[int, object], str, dict[str, str]]


def _dispositions() -> dict[int, object]:
    """Every catchable signal's current handler (SIG_DFL, SIG_IGN or a callable), less
    SIGALRM, which pytest-timeout installs and removes around each test itself."""
    found = {}
    for sig in set(signal.valid_signals()) - {getattr(signal, "SIGALRM", None)}:  # none on Windows
        try:
            found[int(sig)] = signal.getsignal(sig)
        except (OSError, ValueError):  # SIGKILL/SIGSTOP, or a number with no handler slot
            pass
    return found


def _environment() -> dict[str, str]:
    """os.environ, less the variable pytest itself rewrites at each phase of a test."""
    return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}


def global_state() -> GlobalState:
    """What a later test or helper process inherits: signal dispositions, cwd, environment."""
    return _dispositions(), os.getcwd(), _environment()


def restore_global_state(before: GlobalState) -> list[str]:
    """Put back what changed since ``before`` and name it."""
    handlers, cwd, env = before
    changed = []
    for sig, handler in _dispositions().items():
        if handlers.get(sig, handler) != handler:
            changed.append(f"{signal.Signals(sig).name} handler")
            signal.signal(sig, handlers[sig])  # type: ignore[arg-type]
    if os.getcwd() != cwd:
        changed.append(f"cwd ({os.getcwd()})")
        os.chdir(cwd)
    now = _environment()
    keys = sorted(k for k in set(now) | set(env) if now.get(k) != env.get(k))
    if keys:
        changed.append(f"environment ({', '.join(keys)})")
    for key in keys:
        if key in env:
            os.environ[key] = env[key]
        else:
            del os.environ[key]
    return changed
