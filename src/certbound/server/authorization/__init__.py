"""certbound.server.authorization: the authorization code flow's protocol core, without the web framework.

An authorization request parsed and checked (`request`: RFC 6749 section 4.1.1, RFC 7636, OpenID
Connect Core 3.1.2.1, RFC 9126 ``request_uri``), PKCE (`pkce`), the redirect back to the client
(`redirects`), codes (`codes`) and pushed requests (`pushed`). The pages and endpoints that use them
are in `certbound.server.endpoints`.
"""
