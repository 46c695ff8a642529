"""What the gateway and the SDK tell the outside world: Prometheus metrics (``metrics*.py``, and the rules
and dashboards built on them in ``deploy/``), traces (``traces*.py``), callbacks (``callbacks*.py``,
``webhook.py``) and alerts (``alerts.py``).

Every exporter runs off the request path, behind a bounded queue: a slow or dead collector drops data
(counted), never slows or fails a request. Optional dependencies (OpenTelemetry) are imported only when
a config asks for them.
"""
