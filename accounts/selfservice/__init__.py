"""Self-service: a user's own sessions (list them, end one) and their password
change, which continues the device on a new session. The login, logout and
`me/` endpoints stay in `accounts.views`."""
