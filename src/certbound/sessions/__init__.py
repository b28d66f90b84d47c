"""certbound.sessions: server-side sessions behind sealed cookies, for the login flows and the gateway."""
