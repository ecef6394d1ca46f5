"""Plain-SQL data access. Every function takes the caller's connection, so the
service layer decides what shares a transaction."""
