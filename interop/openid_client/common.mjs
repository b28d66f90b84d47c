// What the openid-client scripts share: fetch over node:https with a client certificate, and errors as
// JSON. Used by run.mjs and code_flow.mjs.

import { readFileSync } from 'node:fs';
import https from 'node:https';

// fetch() over node:https, so that the client certificate, its key and the server's CA can be given
// (Node's global fetch has no option for them without the undici package). openid-client calls it
// with (url, {body, headers, method, redirect: 'manual', signal}) and wants a Response back.
export function tlsFetch({ cert, key, ca }) {
  const agent = new https.Agent({
    ca: readFileSync(ca),
    cert: cert ? readFileSync(cert) : undefined,
    key: key ? readFileSync(key) : undefined,
    keepAlive: false,
  });
  return (url, options = {}) => new Promise((resolve, reject) => {
    let body = options.body;
    if (body instanceof URLSearchParams) body = body.toString();
    const headers = { ...(options.headers ?? {}) };
    if (typeof body === 'string') headers['content-length'] = Buffer.byteLength(body);
    const req = https.request(url, { method: options.method ?? 'GET', headers, agent, signal: options.signal }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (Array.isArray(value)) value.forEach((v) => responseHeaders.append(name, v));
          else if (value !== undefined) responseHeaders.set(name, String(value));
        }
        const status = res.statusCode ?? 500;
        const payload = [101, 204, 205, 304].includes(status) ? null : Buffer.concat(chunks);
        resolve(new Response(payload, { status, headers: responseHeaders }));
      });
    });
    req.on('error', reject);
    if (typeof body === 'string') req.write(body);
    req.end();
  });
}

// openid-client reports a 401 that carries WWW-Authenticate (certbound sends one on every 401) as a
// WWWAuthenticateChallengeError whose cause is the parsed challenges; the OAuth error body is still
// in err.response.
export async function describeError(err) {
  let body = err?.error ? { error: err.error, error_description: err.error_description } : err?.cause?.body;
  if (body === undefined && err?.response && !err.response.bodyUsed) {
    try { body = await err.response.json(); } catch { body = undefined; }
  }
  return {
    name: err?.name,
    message: err?.message,
    code: err?.code,
    status: err?.status ?? err?.cause?.status,
    challenges: Array.isArray(err?.cause) ? err.cause : undefined,
    cause: err?.cause && !Array.isArray(err.cause) ? String(err.cause.message ?? err.cause) : undefined,
    body,
  };
}
