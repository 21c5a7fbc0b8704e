"""``bgagent``: the command line of the background coding agent."""
