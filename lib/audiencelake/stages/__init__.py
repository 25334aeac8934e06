"""The pipeline's stages. Each is declared beside its function with the tables it reads and writes (`declaration`);
`registry` lists them once, in the order `audiencelake run` runs them, and derives their dependencies from those
declarations; `runner` runs one stage or the pipeline; `bundle` writes the Databricks job from the registry.

The stage functions live in `pipeline` (synth to profile), `models` (train_ and score_ per model), `activation`
(audiences, export, measure) and `report`; each calls one library function of the domain packages.
"""
