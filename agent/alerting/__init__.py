"""Alerting rules: PromQL evaluation over the agent's history, rule groups, alert states."""
