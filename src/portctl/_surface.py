"""The one surface of the platform modules: `_posix`, `_linux` and `_windows` each define
exactly these names, and `_platform` re-exports the chosen module's."""

SURFACE = (
    "NAME",
    "STOP_SIGNALS",
    "WAKE_INTERVAL_S",
    "become_subreaper",
    "block_until_unlocked",
    "can_bind",
    "children",
    "describe",
    "graceful_group",
    "graceful_one",
    "is_privileged",
    "listeners",
    "lock_holders",
    "lock_is_held",
    "outside_group",
    "reap_adopted",
    "request_stop",
    "spawn",
    "spawn_detached",
    "stop_requested",
    "try_lock",
    "unlock",
    "wait_exits",
)
