"""The agent runtime's side of ``--trace``: accumulate, dump, upload, link."""
