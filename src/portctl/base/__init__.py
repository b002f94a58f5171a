"""Leaves every layer may use: errors, frozen records, safe run files, atomic writes, the poller
and the defaults. They import nothing else of portctl."""
