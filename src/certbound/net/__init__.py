"""certbound.net: outbound HTTP over an `ssl.SSLContext` we build, for everything that calls out."""
