"""The `audiencelake` command (`main`): one command per stage, `run` and `demo` for the pipeline, and the commands
that describe or change the lake (`info`, `activation`), with the options they share (`options`)."""
