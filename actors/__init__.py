"""Pipeline actors: gateway, risk, book, persistence, publishing."""
