"""Activation: audiences from rules over tags and scores, exports per destination, uplift against holdouts."""
