"""Observability: Prometheus metrics (``metrics*.py``), and the rules and dashboards built on them (``deploy/``)."""
