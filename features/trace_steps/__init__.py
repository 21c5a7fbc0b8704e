"""Step definitions of the acceptance suite, by domain concept.

- ``accounts``: users of the platform and their configured CLI.
- ``tasks``: tasks run by the agent, traced or not.
- ``downloads``: asking for a trace and what the user then sees.

Steps call production code (the pipeline, the CLI, the API through the local
gateway); they never re-implement it.
"""
