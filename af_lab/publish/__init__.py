"""Publish: workspace outputs to Rucio, with provenance, embargo rules and restart-safe jobs.

Modules: ``handlers`` (REST contract, thin) -> ``service`` (requests: options, checks,
submit, jobs) -> ``runner`` (the job's phases; those from registering on in
``registration``) over ``catalogue`` (bulk Rucio calls),
``storage`` (RSE protocol copies), ``store`` (SQLite jobs); pure helpers in ``plan``,
``naming``, ``checks``, ``provenance``, ``workspace``; ``access`` is the one seam to the
Rucio service.
"""
