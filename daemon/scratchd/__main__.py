"""``python -m scratchd`` is the same as the ``scratchd`` command."""

from scratchd.cli import main

raise SystemExit(main())
