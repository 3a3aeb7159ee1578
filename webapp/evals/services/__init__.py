"""Evaluation writes, one module per concept: ``config`` (settings and judge specs),
``eval_runs`` (create, enqueue, cancel), ``items`` (what a run evaluates), ``execution`` (the
two phases), ``long_input`` (benchmark file import) and ``ablations`` (the ablation grid).

An evaluation runs in two phases, each claimed through the database (one UPDATE that must
change exactly one row), so a re-delivered task message does nothing twice:

1. ``eval_run_generate``: QUEUED -> GENERATING; the system writes its responses (stored per
   item, unjudged) -> JUDGING. On a GPU worker (``generate_*`` tasks route there).
2. ``eval_run_judge``: judges the stored responses, stores scores and aggregates ->
   SUCCEEDED. On a judge worker (``judge_*`` tasks).

A failure in either phase marks the run FAILED with the error; stored responses are kept.
"""
