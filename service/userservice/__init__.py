"""A user service (registration, password login, token refresh, search) that perfci loads."""
