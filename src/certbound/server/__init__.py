"""certbound.server: the authorization server application.

`app` builds the ASGI application from one typed `services.Services`; `endpoints/` are thin (parse,
call, render); `clientauth/` authenticates clients (one module per method), `clients/` registers
them, `grants/` decides what a token request gets, `tokens/` mints, introspects and revokes.
`run` starts the worker processes, `bootstrap` does the one-time start-up work in the parent.
"""
