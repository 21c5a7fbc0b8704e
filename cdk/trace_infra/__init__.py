"""Infrastructure of the trace round trip: resource definitions and the get-trace-url handler.

Importing this package must stay cheap: the Lambda handler ships from it.
"""
