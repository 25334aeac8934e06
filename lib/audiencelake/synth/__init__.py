"""Deterministic multi-source world generator with planted ground truth (`generate_world`)."""

from __future__ import annotations

from audiencelake.synth.world import WorldSpec, generate_world, recorded_spec

__all__ = ["WorldSpec", "generate_world", "recorded_spec"]
