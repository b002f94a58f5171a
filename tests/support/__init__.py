"""Helpers the tests share (tests/conftest.py holds only fixtures and hooks).

- ``waits``: deadline-based polling and handshakes (port accepts or refuses, file appears,
  lock held); nothing synchronises with a bare sleep.
- ``ports``: free ports to use, and who listens on one (from psutil, not portctl).
- ``processes``: the tracker that owns every process a test starts, the tree reaper and the
  leak scan.
- ``global_state``: what a test may not change for later ones (signal dispositions, cwd,
  environment).
- ``apps``: argv of the test apps in tests/apps, and the bystander check.
- ``portctl``: the ``Portctl`` driver of the real CLI against one run dir.

tests/test_helpers.py tests these helpers.
"""
