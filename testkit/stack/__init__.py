"""The stack a suite session runs against (``session``): the suite's own (``local``) or one
it did not create (``deployed``), with its resources, users and footprint."""
