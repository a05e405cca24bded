"""The measure stage: Locust trials against a booted target, with resources and database counters."""
