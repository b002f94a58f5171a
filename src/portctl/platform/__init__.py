"""The platform seam: one module per OS behind the ``Platform`` protocol, bound once in
``current``. Platform modules import one another and the base only (docs/architecture.md)."""
