"""The ``memories-async`` command line: ``export``, ``get``, ``bench`` and ``fake-server``.

Needs the ``cli`` extra (click and rich): ``pip install 'memories-async[cli]'``. Data goes to
stdout or ``--out``; progress, messages and errors go to stderr, one line per error, never a
traceback, and never the API key. The exit codes are :class:`~memories_async._cli.exits.ExitCode`.

The package holds everything that imports click or rich; the SDK modules around it never do.

* :mod:`.exits`: the exit codes (no click: the fake server's command uses them too);
* :mod:`.options`: options declared once, as fields of frozen attrs classes that drive the
  click parameters and carry the parsed values (:func:`~.options.command`);
* :mod:`.common`: what the commands share: the service options, the API key and the
  client settings (through :meth:`Config.from_env`, the one reader of the environment),
  redaction, errors and exit codes, interrupts, standard output;
* :mod:`.progress`: the progress display and summary table of ``export``;
* one module per command: :mod:`.export`, :mod:`.get`, :mod:`.bench`, :mod:`.fake_server`;
* :mod:`.app`: the ``memories-async`` group and :func:`~.app.main`.

This module imports nothing, so that :mod:`.exits` can be imported without click.
"""
