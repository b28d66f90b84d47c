"""Client registration: RFC 7591/7592 dynamic registration, metadata validation, and file-declared clients.

The protocol core of registration lives here and never imports the web framework; the HTTP handlers in
`certbound.server.endpoints.registration` only parse requests and render what this package returns.
"""
