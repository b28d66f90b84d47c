// oidc-provider with mutual TLS (RFC 8705), for certbound's interoperability tests (tests/interop).
//
// Usage: node oidc-provider-server.mjs CONFIG.json
//
// CONFIG.json (written by the Python test):
//   tls:     { cert, key, clientCa }  PEM file paths: the server certificate and key, and the CA(s)
//            trusted for tls_client_auth (also advertised in the CertificateRequest)
//   mtlsListener: true to serve a second listener that asks for client certificates and to
//            publish it as mtls_endpoint_aliases; the first listener then never asks for one
//   jwks:    { keys: [...] }           the provider's private signing keys
//   clients: [ ... ]                   client metadata, as oidc-provider takes it
//   resourceServers: { "<uri>": { scope, audience, accessTokenFormat, ... } }  (RFC 8707)
//   shortLived: [ client_id, ... ]     clients whose access tokens live 2 s (expiry tests)
//   logIntrospection: true to print one JSON line per introspection request on stdout:
//            {"event": "introspection", "client_id", "cert_x5t_s256", "status"} (the caller's
//            client_id as the provider authenticated it, and the thumbprint of its TLS certificate)
//   passwordGrant: { username, password }: the resource owner password grant, for that one user
//   codeFlow: true for people logging in (the gateway's tests): the development login and consent
//            pages (any login, any password), the PAR and userinfo mTLS aliases, and one JSON line
//            per request to the token, revocation and PAR endpoints: {"event": "token" | "revocation"
//            | "pushed_authorization_request", "grant_type", "client_id", "cert_x5t_s256", "status"}
//
// Both listeners bind 127.0.0.1 on a free port. When ready the script prints one JSON line on
// stdout: {"issuer": "https://127.0.0.1:P", "port": P, "mtlsPort": Q|null}.
// The TLS layer lets every client certificate through (rejectUnauthorized: false) so that the
// provider decides: certificateAuthorized() reads the socket's verdict against clientCa.

import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { isIP } from 'node:net';

import Provider, { errors as oidcErrors } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

function peerCertificate(ctx) {
  const { socket } = ctx;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const peer = socket.getPeerCertificate(true);
  if (!peer || !peer.raw) return undefined;
  return new X509Certificate(peer.raw);
}

// RFC 4514 "CN=a,O=b" as a multiset of "type=value" (test grade: no escaped commas or plus signs).
function dnParts(dn, separator) {
  return dn.split(separator).map((part) => {
    const i = part.indexOf('=');
    return `${part.slice(0, i).trim().toUpperCase()}=${part.slice(i + 1).trim()}`;
  }).sort();
}

function sanValues(cert, prefix) {
  const san = cert.subjectAltName || '';
  return san.split(', ').filter((v) => v.startsWith(`${prefix}:`)).map((v) => v.slice(prefix.length + 1));
}

function certificateSubjectMatches(ctx, property, expected) {
  const cert = peerCertificate(ctx);
  if (!cert) return false;
  switch (property) {
    case 'tls_client_auth_subject_dn':
      return JSON.stringify(dnParts(cert.subject, '\n')) === JSON.stringify(dnParts(expected, ','));
    case 'tls_client_auth_san_dns':
      return sanValues(cert, 'DNS').includes(expected);
    case 'tls_client_auth_san_uri':
      return sanValues(cert, 'URI').includes(expected);
    case 'tls_client_auth_san_email':
      return sanValues(cert, 'email').includes(expected);
    case 'tls_client_auth_san_ip':
      return isIP(expected) !== 0 && sanValues(cert, 'IP Address').includes(expected);
    default:
      return false;
  }
}

const tlsOptions = {
  cert: readFileSync(config.tls.cert),
  key: readFileSync(config.tls.key),
  ca: config.tls.clientCa ? readFileSync(config.tls.clientCa) : undefined,
  rejectUnauthorized: false,
};

function listen(requestCert) {
  const server = https.createServer({ ...tlsOptions, requestCert });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

const main = await listen(!config.mtlsListener);
const mtls = config.mtlsListener ? await listen(true) : null;
const port = main.address().port;
const mtlsPort = mtls ? mtls.address().port : null;
const issuer = `https://127.0.0.1:${port}`;
const mtlsBase = mtls ? `https://127.0.0.1:${mtlsPort}` : null;

const resourceServers = config.resourceServers || {};
const shortLived = new Set(config.shortLived || []);
const tokenTtl = (ctx, token, client) => (client && shortLived.has(client.clientId) ? 2 : 600);

const provider = new Provider(issuer, {
  clients: config.clients,
  clientDefaults: {
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    id_token_signed_response_alg: 'ES256',
  },
  jwks: config.jwks,
  clientAuthMethods: [
    'none',
    'client_secret_basic',
    'client_secret_post',
    'client_secret_jwt',
    'private_key_jwt',
    'tls_client_auth',
    'self_signed_tls_client_auth',
  ],
  ttl: { AccessToken: tokenTtl, ClientCredentials: tokenTtl },
  scopes: ['openid', 'offline_access', 'api:read', 'api:write'],
  discovery: mtlsBase ? {
    mtls_endpoint_aliases: {
      token_endpoint: `${mtlsBase}/token`,
      introspection_endpoint: `${mtlsBase}/token/introspection`,
      revocation_endpoint: `${mtlsBase}/token/revocation`,
      ...(config.codeFlow ? {
        pushed_authorization_request_endpoint: `${mtlsBase}/request`,
        userinfo_endpoint: `${mtlsBase}/me`,
      } : {}),
    },
  } : {},
  features: {
    devInteractions: { enabled: config.codeFlow === true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => false,
      getResourceServerInfo(ctx, resourceIndicator) {
        const info = resourceServers[resourceIndicator];
        if (!info) throw new Provider.errors.InvalidTarget();
        return info;
      },
    },
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      selfSignedTlsClientAuth: true,
      tlsClientAuth: true,
      getCertificate: peerCertificate,
      certificateAuthorized: (ctx) => ctx.socket.authorized === true,
      certificateSubjectMatches,
    },
  },
});
const logged = new Set(config.logIntrospection ? ['introspection'] : []);
if (config.codeFlow) ['token', 'revocation', 'pushed_authorization_request'].forEach((r) => logged.add(r));
if (logged.size) {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc && logged.has(ctx.oidc.route)) {
      const cert = peerCertificate(ctx);
      const x5t = cert ? createHash('sha256').update(cert.raw).digest('base64url') : null;
      const clientId = ctx.oidc.client ? ctx.oidc.client.clientId : null;
      const grantType = ctx.oidc.params ? ctx.oidc.params.grant_type : undefined;
      process.stdout.write(`${JSON.stringify({
        event: ctx.oidc.route, client_id: clientId, cert_x5t_s256: x5t, status: ctx.status,
        ...(grantType ? { grant_type: grantType } : {}),
      })}\n`);
    }
  });
}
if (config.passwordGrant) {
  // The resource owner password grant (RFC 6749 section 4.3), which oidc-provider does not ship, for
  // the gateway's `password` auth method: one user, from the configuration; the token is bound to the
  // client's certificate as the client_credentials grant's is.
  provider.registerGrantType('password', async (ctx) => {
    const { username, password } = ctx.oidc.params;
    if (username !== config.passwordGrant.username || password !== config.passwordGrant.password) {
      throw new oidcErrors.InvalidGrant('wrong username or password');
    }
    const token = new provider.ClientCredentials({ client: ctx.oidc.client, scope: ctx.oidc.params.scope || undefined });
    const cert = peerCertificate(ctx);
    if (cert && ctx.oidc.client.tlsClientCertificateBoundAccessTokens) token.setThumbprint('x5t', cert);
    ctx.body = {
      access_token: await token.save(), expires_in: token.expiration, token_type: 'Bearer', scope: token.scope,
    };
  }, new Set(['username', 'password', 'scope']));
}
provider.on('server_error', (ctx, err) => {
  process.stderr.write(`server_error: ${err.stack}\n`);
});

const callback = provider.callback();
main.on('request', callback);
if (mtls) mtls.on('request', callback);

process.stdout.write(`${JSON.stringify({ issuer, port, mtlsPort })}\n`);

function stop() {
  main.close();
  if (mtls) mtls.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
