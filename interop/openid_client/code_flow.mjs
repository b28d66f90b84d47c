// openid-client (v6, pinned in interop/package.json) as the relying party of the authorization code flow
// with PKCE: discovery, the authorization URL (plain or pushed, RFC 9126), then, once the person has
// logged in, the code exchange with every check openid-client makes (state, nonce, ID token, iss),
// userinfo, a refresh, and userinfo again. Used by tests/interop/test_openid_client_code_flow.py, which
// plays the person at the login page in between.
//
// Input: one JSON object on stdin:
//   step                 "start" or "finish"
//   issuer, client_id, ca, redirect_uri, scope
//   method               tls_client_auth | none | client_secret_basic
//   client_secret        client_secret_basic
//   cert, key            PEM files of the client certificate, presented on every connection
//   use_mtls_endpoint_aliases   token, userinfo and PAR at mtls_endpoint_aliases
//   par                  push the authorization request first (start)
//   verifier, state, nonce, callback_url   (finish) what start returned, and where the browser landed
// Output (one JSON object): start {"url", "verifier", "state", "nonce"};
//   finish {"token", "id_token_claims", "userinfo", "refreshed", "userinfo_after_refresh"};
//   or {"error": {...}} with exit status 1.

import { readFileSync } from 'node:fs';
import * as client from 'openid-client';
import { describeError, tlsFetch } from './common.mjs';

function authentication(input) {
  switch (input.method) {
    case 'tls_client_auth':
      return client.TlsClientAuth();
    case 'none':
      return client.None();
    case 'client_secret_basic':
      return client.ClientSecretBasic(input.client_secret);
    default:
      throw new Error(`unsupported method ${input.method}`);
  }
}

async function configure(input) {
  const metadata = {
    use_mtls_endpoint_aliases: Boolean(input.use_mtls_endpoint_aliases),
    token_endpoint_auth_method: input.method,
  };
  return client.discovery(
    new URL(input.issuer), input.client_id, metadata, authentication(input),
    { [client.customFetch]: tlsFetch(input) },
  );
}

async function start(input, config) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const parameters = {
    redirect_uri: input.redirect_uri,
    scope: input.scope,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  };
  const url = input.par
    ? await client.buildAuthorizationUrlWithPAR(config, parameters)
    : client.buildAuthorizationUrl(config, parameters);
  return { url: url.href, verifier, state, nonce };
}

async function finish(input, config) {
  const token = await client.authorizationCodeGrant(config, new URL(input.callback_url), {
    pkceCodeVerifier: input.verifier,
    expectedState: input.state,
    expectedNonce: input.nonce,
    idTokenExpected: true,
  });
  const claims = token.claims();
  const userinfo = await client.fetchUserInfo(config, token.access_token, claims.sub);
  const refreshed = await client.refreshTokenGrant(config, token.refresh_token);
  const after = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);
  return {
    token: { ...token },
    id_token_claims: { ...claims },
    userinfo: { ...userinfo },
    refreshed: { ...refreshed },
    userinfo_after_refresh: { ...after },
  };
}

try {
  const input = JSON.parse(readFileSync(0, 'utf8'));
  const config = await configure(input);
  const result = input.step === 'start' ? await start(input, config) : await finish(input, config);
  process.stdout.write(JSON.stringify(result) + '\n');
} catch (err) {
  process.stdout.write(JSON.stringify({ error: await describeError(err) }) + '\n');
  process.exitCode = 1;
}
