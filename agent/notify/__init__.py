"""Notifications: routing, grouping and one folder per receiver integration."""
