"""``python -m microemo_ref`` is the same as the ``microemo-ref`` command."""
from microemo_ref.cli import main

raise SystemExit(main())
