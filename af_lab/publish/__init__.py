"""Publish: workspace outputs to Rucio, with provenance, embargo rules and restart-safe jobs.

Modules: ``handlers`` (REST contract, thin) -> ``service`` (requests: options, checks,
submit, jobs; owns the job ``store`` and a ``runner``) -> ``runner`` (the job's tasks and
phases up to copying; ``registration`` from registering on), both over a ``context``
(the store, the Rucio gateway's typed methods with a job's retry, progress events);
``storage`` (RSE protocol copies), ``store`` (SQLite jobs); pure helpers in ``plan``,
``naming``, ``checks``, ``provenance``, ``workspace``.
"""
