"""Local stand-ins for the AWS side of the trace round trip: moto, and an API Gateway.

Used by the acceptance suite; nothing here is deployed.
"""
