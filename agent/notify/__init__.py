"""Notifications: routing, grouping and one folder per receiver integration."""

from agent.notify.notifier import Notifier

__all__ = ["Notifier"]
