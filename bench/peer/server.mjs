// The benchmark's peer: oidc-provider configured like certbound for `python -m bench.run`.
//
// Usage: node server.mjs CONFIG.json   (CONFIG.json is written by bench/material.py)
//
// CONFIG.json: { port, tls: { cert, key, clientCa }, jwks: { keys: [...] }, clients: [...],
//               resource: "<uri>" }
//
// Equivalent to certbound's set-up: ES256 JWT access tokens (RFC 9068) for the resource, bound to
// the client certificate (cnf.x5t#S256); tls_client_auth by subject DN, self_signed_tls_client_auth,
// private_key_jwt, client_secret_basic; introspection and revocation. One HTTPS listener that asks
// for a client certificate and lets every one through (rejectUnauthorized: false) so that the
// provider decides: certificateAuthorized() reads the socket's verdict against clientCa.
// Tokens asked for without a resource are opaque (oidc-provider cannot introspect its own JWTs).
// When listening, prints one JSON line on stdout: {"port": P}.

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

// The client certificate is parsed once per connection (as certbound does), not on every call:
// oidc-provider asks for it several times per request, and parsing costs more than the rest.
const certificates = new WeakMap();

function getCertificate(ctx) {
  const { socket } = ctx;
  if (certificates.has(socket)) return certificates.get(socket);
  let cert;
  if (typeof socket.getPeerCertificate === 'function') {
    const peer = socket.getPeerCertificate(false);
    if (peer && peer.raw) cert = new X509Certificate(peer.raw);
  }
  certificates.set(socket, cert);
  return cert;
}

// RFC 4514 "CN=a,O=b" as a sorted multiset of "TYPE=value" (no escaped commas or plus signs here).
function dnParts(dn, separator) {
  return dn.split(separator).map((part) => {
    const i = part.indexOf('=');
    return `${part.slice(0, i).trim().toUpperCase()}=${part.slice(i + 1).trim()}`;
  }).sort().join('\n');
}

function certificateSubjectMatches(ctx, property, expected) {
  const cert = getCertificate(ctx);
  if (!cert || property !== 'tls_client_auth_subject_dn') return false;
  return dnParts(cert.subject, '\n') === dnParts(expected, ',');
}

// oidc-provider's development adapter is an LRU of 1,000 entries: past that, tokens to introspect or
// revoke and the assertion replay cache would silently be forgotten. This one keeps every entry
// until it expires (memory only, like the development adapter; certbound writes these durably).
class MapAdapter {
  static entries = new Map();

  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : Infinity;
    MapAdapter.entries.set(this.key(id), { payload, expiresAt });
  }

  async find(id) {
    const entry = MapAdapter.entries.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      MapAdapter.entries.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }

  async findByUid() { return undefined; }

  async findByUserCode() { return undefined; }

  async consume(id) {
    const entry = MapAdapter.entries.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    MapAdapter.entries.delete(this.key(id));
  }

  async revokeByGrantId() {}
}

const server = https.createServer({
  cert: readFileSync(config.tls.cert),
  key: readFileSync(config.tls.key),
  ca: readFileSync(config.tls.clientCa),
  requestCert: true,
  rejectUnauthorized: false,
  keepAliveTimeout: 30000,
});
await new Promise((resolve) => { server.listen(config.port, '127.0.0.1', resolve); });
const issuer = `https://127.0.0.1:${server.address().port}`;

const resourceServer = {
  scope: 'api:read api:write',
  audience: config.resource,
  accessTokenFormat: 'jwt',
  accessTokenTTL: 600,
  jwt: { sign: { alg: 'ES256' } },
};

const provider = new Provider(issuer, {
  adapter: MapAdapter,
  clients: config.clients,
  clientDefaults: {
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    id_token_signed_response_alg: 'ES256',
  },
  jwks: config.jwks,
  clientAuthMethods: [
    'client_secret_basic',
    'private_key_jwt',
    'tls_client_auth',
    'self_signed_tls_client_auth',
  ],
  enabledJWA: { clientAuthSigningAlgValues: ['ES256'] },
  ttl: { AccessToken: 600, ClientCredentials: 600 },
  scopes: ['api:read', 'api:write'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => false,
      getResourceServerInfo(ctx, resourceIndicator) {
        if (resourceIndicator !== config.resource) throw new Provider.errors.InvalidTarget();
        return resourceServer;
      },
    },
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      selfSignedTlsClientAuth: true,
      tlsClientAuth: true,
      getCertificate,
      certificateAuthorized: (ctx) => ctx.socket.authorized === true,
      certificateSubjectMatches,
    },
  },
});
provider.on('server_error', (ctx, err) => {
  process.stderr.write(`server_error: ${err.stack}\n`);
});
if (process.env.BENCH_PEER_DEBUG) {
  for (const event of ['grant.error', 'introspection.error', 'revocation.error']) {
    provider.on(event, (ctx, err) => {
      process.stderr.write(`${event}: ${err.message} ${err.error_detail || ''} ${err.cause || ''}\n`);
    });
  }
}
server.on('request', provider.callback());

process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);

function stop() {
  server.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
