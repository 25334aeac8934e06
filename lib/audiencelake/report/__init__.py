"""Human-readable outputs: the lake summary and the data dictionary."""
