"""Use cases: what the handlers call. They speak domain objects, never HTTP."""
