"""The side-by-side benchmark against oidc-provider: ``python -m bench.run`` (docs/performance.md)."""
