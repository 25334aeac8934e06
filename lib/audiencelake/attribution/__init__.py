"""Channel attribution: journeys to each conversion and the models that credit its touchpoints."""
