"""The run directory: the only code that reads or writes a run's files.

- :mod:`.run`: a run's layout, config, metrics and status (``runs/<name>/``), atomic writes.
- :mod:`.checkpoint`: what a checkpoint holds and the one resume policy.
- :mod:`.artifacts`: the analysis artifacts under ``analysis/``.
- :mod:`.guarantee_record`: the stored downstream guarantee read as a type.
- :mod:`.lock`: one writer per run.
- :mod:`.launch`, :mod:`.background`: trainers and analyses as detached processes.
- :mod:`.admin`: rename, delete, reinstall the demo runs.
- :mod:`.sweep`: sweeps' manifests and tables. :mod:`.demo`: the shipped demo runs.

The format is docs/RUN_FORMAT.md's. Nothing here imports :mod:`explorer.analysis` or
:mod:`explorer.readings`: they read runs through this package.
"""
