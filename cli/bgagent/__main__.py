"""``python -m bgagent``: the same as the ``bgagent`` command."""

from bgagent.main import main

main()
