"""audiencelake: a Spark job suite for precision marketing on Delta Lake."""

from __future__ import annotations

__version__ = "0.1.0"
