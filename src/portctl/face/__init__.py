"""The ways in: the console entry, the click CLI, the command bodies, the library API and the
user-facing text and rendering. Nothing below imports this package (docs/architecture.md)."""
