"""Targets: boot the service under test, wait for health, yield where to send load, always tear down."""
