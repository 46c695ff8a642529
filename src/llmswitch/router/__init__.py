"""Choosing deployments and surviving their failures: retry policy, backoff, (later) breakers."""
