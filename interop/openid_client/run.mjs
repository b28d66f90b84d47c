// openid-client (v6, pinned in interop/package.json) against an authorization server: discover it, get a
// client_credentials token, introspect it, revoke it, introspect it again. Used by
// tests/interop/test_openid_client.py.
//
// Input: one JSON object on stdin (or as the first argument):
//   issuer               the issuer URL (discovery: /.well-known/openid-configuration)
//   client_id            the client
//   method               tls_client_auth | self_signed_tls_client_auth | private_key_jwt | client_secret_basic
//   client_secret        client_secret_basic
//   private_jwk          private_key_jwt: the private JWK (EC P-256, with kid), signs with ES256
//   cert, key            PEM files of the client certificate and key, presented on every connection
//                        (the mTLS methods need them; any method may bind its tokens with them)
//   ca                   PEM file of the CA that issued the server's certificate
//   scope                optional scope for the token request
//   use_mtls_endpoint_aliases   send token/introspection/revocation to mtls_endpoint_aliases
// Output: one JSON object on stdout:
//   {"metadata": {...endpoints used...}, "token": <token response>, "introspection": <before revocation>,
//    "revoked": true, "introspection_after": <after revocation>}
//   or {"error": {"name", "message", "code", "status", "body"}} with exit status 1.

import { readFileSync } from 'node:fs';
import { webcrypto } from 'node:crypto';
import * as client from 'openid-client';
import { describeError, tlsFetch } from './common.mjs';

function readInput() {
  const text = process.argv[2] ?? readFileSync(0, 'utf8');
  return JSON.parse(text);
}

async function clientAuthentication(input) {
  switch (input.method) {
    case 'tls_client_auth':
    case 'self_signed_tls_client_auth':
      return client.TlsClientAuth(); // both send client_id in the body; the certificate does the rest
    case 'client_secret_basic':
      return client.ClientSecretBasic(input.client_secret);
    case 'private_key_jwt': {
      const { kid, ...jwk } = input.private_jwk;
      const key = await webcrypto.subtle.importKey(
        'jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'],
      );
      return client.PrivateKeyJwt({ key, kid });
    }
    default:
      throw new Error(`unsupported method ${input.method}`);
  }
}

async function main() {
  const input = readInput();
  const fetcher = tlsFetch(input);
  const metadata = {
    use_mtls_endpoint_aliases: Boolean(input.use_mtls_endpoint_aliases),
    token_endpoint_auth_method: input.method,
  };
  const config = await client.discovery(
    new URL(input.issuer), input.client_id, metadata, await clientAuthentication(input),
    { [client.customFetch]: fetcher },
  );
  const server = config.serverMetadata();
  const parameters = input.scope ? { scope: input.scope } : {};
  const token = await client.clientCredentialsGrant(config, parameters);
  const introspection = await client.tokenIntrospection(config, token.access_token);
  await client.tokenRevocation(config, token.access_token);
  const introspectionAfter = await client.tokenIntrospection(config, token.access_token);
  return {
    metadata: {
      issuer: server.issuer,
      token_endpoint: server.token_endpoint,
      mtls_endpoint_aliases: server.mtls_endpoint_aliases ?? null,
    },
    token: { ...token },
    introspection: { ...introspection },
    revoked: true,
    introspection_after: { ...introspectionAfter },
  };
}

try {
  process.stdout.write(JSON.stringify(await main()) + '\n');
} catch (err) {
  process.stdout.write(JSON.stringify({ error: await describeError(err) }) + '\n');
  process.exitCode = 1;
}
