"""chatwatch: a log-driven metrics and alerting sidecar for chatbots."""

__version__ = "0.1.0"
