"""The acceptance suite's fixtures and steps, registered from their packages.

``trace_steps.environment`` starts the local AWS (moto, the S3 gate, the API
gateway) and the users; the other modules hold the steps, by concept.
"""

pytest_plugins = [
    "trace_steps.environment",
    "trace_steps.scene",
    "trace_steps.accounts",
    "trace_steps.tasks",
    "trace_steps.downloads",
]
