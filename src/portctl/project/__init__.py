"""Projects: several named services described once (``portctl.toml``, ``[tool.portctl]`` in
``pyproject.toml``, or a ``Procfile``), started and stopped in dependency order.

``model`` holds the pure records (Project, Service) and the wiring (start order, placeholders,
environment, the ServerSpec of a service); ``config`` finds and validates the file.
"""
from __future__ import annotations
