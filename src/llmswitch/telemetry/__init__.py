"""What the gateway and the SDK tell the outside world: traces, callbacks, alerts (and metrics).

Every exporter runs off the request path, behind a bounded queue: a slow or dead collector drops data
(counted), never slows or fails a request. Optional dependencies (OpenTelemetry) are imported only when
a config asks for them.
"""
