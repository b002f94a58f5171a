"""Stop requests by file (how `stop` reaches a Windows supervisor): only a request naming this
supervisor's pid and its instance token is taken; any other is removed without effect.
File logic only: the Windows wake-up loop that calls it has not run anywhere yet (no Windows run)."""
from __future__ import annotations

from pathlib import Path

from portctl.platform import stoprequest


def test_no_request(tmp_path: Path) -> None:
    assert not stoprequest.take(tmp_path, 8001, 100, "tok")


def test_a_matching_request_is_taken_once(tmp_path: Path) -> None:
    stoprequest.write(tmp_path, 8001, 100, "tok")
    assert stoprequest.request_file(tmp_path, 8001).read_text() == "100 tok\n"
    assert stoprequest.take(tmp_path, 8001, 100, "tok")
    assert not stoprequest.request_file(tmp_path, 8001).exists()
    assert not stoprequest.take(tmp_path, 8001, 100, "tok")


def test_requests_for_another_port_are_not_seen(tmp_path: Path) -> None:
    stoprequest.write(tmp_path, 8002, 100, "tok")
    assert not stoprequest.take(tmp_path, 8001, 100, "tok")
    assert stoprequest.request_file(tmp_path, 8002).exists()


def test_a_stale_forged_or_damaged_request_is_removed_unanswered(tmp_path: Path) -> None:
    path = stoprequest.request_file(tmp_path, 8001)
    for text in ("99 tok\n", "100 other\n", "100\n", "", "100 tok extra\n", "\x00garbage"):
        path.write_text(text)
        assert not stoprequest.take(tmp_path, 8001, 100, "tok"), text
        assert not path.exists()


def test_a_supervisor_without_a_token_takes_nothing(tmp_path: Path) -> None:
    stoprequest.request_file(tmp_path, 8001).write_text("100 \n")
    assert not stoprequest.take(tmp_path, 8001, 100, "")
