"""``python -m engine batch``: many reconstructions, each in its own worker process, resumable.

A batch reads its jobs (:mod:`.source`: a folder of datasets, or a JSON Lines file of
:class:`~engine.protocol.ReconstructJob` fields), skips those whose output is already there, runs
the rest as ``python -m engine worker JOB.json`` processes (:mod:`.attempt`) on this machine
(:mod:`.local`) or as Ray tasks on a cluster (:mod:`.cluster`), and writes the summary
(:mod:`.summary`). Everything it writes is under the output root::

    ROOT/NAME/              one job's result (NAME.obj, .mtl, .png, .glb, report.json), whole or absent
    ROOT/_logs/NAME.log     that job's log: stages, log messages, the worker's stderr, how each try ended
    ROOT/_logs/NAME.job.json  the job file its worker read
    ROOT/summary.json, ROOT/summary.csv   one row per job: done, skipped or failed, and why

Job names come from :func:`engine.protocol.safe_name`, which never starts with ``_``, so no job
folder can be ``_logs``.
"""
