"""certbound.server.users: the people who log in: password hashes, the login check and its throttle.

No web framework here: the login page (`certbound.server.endpoints.login`) and ``certbound users``
call these with plain values.
"""
