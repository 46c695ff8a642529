"""Choosing deployments and surviving their failures.

``router`` (the :class:`~llmswitch.router.router.Router` and its decision loop), ``deployments``
(deployments and their live state), ``strategies``, ``breaker``, ``usage`` (rpm/tpm counters),
``fallbacks``, ``retry`` (error classes, backoff, Retry-After in every form), ``outcomes`` (one attempt
and what it teaches), ``settings``, ``probes`` (background health checks) and ``completions`` (the
LiteLLM-style SDK methods). Nothing is imported here: ``engine`` imports ``retry`` and must not pull
in the rest.
"""
