"""Playbook engine, notification outbox and exercises."""
