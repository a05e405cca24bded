"""A small notes service: Flask on SQLite, the second service perfci's adoption test adopts."""
