"""Quality gate: Great Expectations suites and Spark row predicates, both derived from the contracts."""
