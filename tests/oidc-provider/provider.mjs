// A real OpenID Provider for ashgate's OAuth2 sign-in tests: the certified `oidc-provider`
// package on a loopback port, with test accounts, a plain login form and test-only switches.
//
// Started by tests/testkit/src/oidc.rs (`node provider.mjs`). It listens on 127.0.0.1 (port
// OIDC_PORT, default 0 = any free port) and prints one JSON line {"issuer": ...} once ready.
//
// Environment:
//   OIDC_ACCOUNTS          JSON {"<account id>": {"password": "...", "claims": {...}}} replacing
//                          the default accounts; the account id is the `sub`.
//   OIDC_ID_TOKEN_CLAIMS   "true": put the scope claims (email, profile, ...) into the ID token too
//                          (oidc-provider's conformIdTokenClaims=false); by default they are only
//                          in UserInfo, so the relying party has to call UserInfo.
//   OIDC_MODE              initial misbehaviour of the token endpoint (see below).
//
// Test-only control endpoints (loopback only, this script is never a real deployment):
//   POST /__test/clients   JSON client metadata (client_id, client_secret, redirect_uris,
//                          token_endpoint_auth_method): registers or replaces a client.
//   POST /__test/mode      JSON {"mode": "..."}: how the token endpoint misbehaves from now on:
//                          "" (behave), "wrong_nonce", "wrong_audience", "expired",
//                          "wrong_issuer", "bad_signature", "no_id_token". The ID token is
//                          re-signed with the provider's own key (except bad_signature), so
//                          only the one claim is wrong.
import http from 'node:http';

import * as jose from 'jose';
import Provider from 'oidc-provider';
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';

const DEFAULT_ACCOUNTS = {
  alice: {
    password: 'alice-password',
    claims: {
      email: 'alice@example.com',
      email_verified: true,
      name: 'Alice Liddell',
      picture: 'https://example.com/alice.png',
      groups: ['engineering', 'observability'],
      role: 'platform-admin',
      realm_access: { roles: ['viewer-role'] },
    },
  },
  bob: {
    password: 'bob-password',
    claims: {
      email: 'bob@example.com',
      email_verified: true,
      name: 'Bob',
      groups: ['sales'],
      role: 'unknown-role',
    },
  },
  nomail: {
    password: 'nomail-password',
    claims: { name: 'No Mail' },
  },
};

const accounts = process.env.OIDC_ACCOUNTS ? JSON.parse(process.env.OIDC_ACCOUNTS) : DEFAULT_ACCOUNTS;
let mode = process.env.OIDC_MODE ?? '';

// Clients live in this map (a real OP keeps them in a database); registered at run time
// because the relying party's callback port is only known after the provider started.
const clients = new Map();
const memory = createMemoryAdapter();
class ClientAdapter {
  async find(id) { return clients.get(id); }
  async upsert(id, payload) { clients.set(id, payload); }
  async destroy(id) { clients.delete(id); }
}
const adapter = (model) => (model === 'Client' ? new ClientAdapter() : memory(model));

const signing = await jose.generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await jose.exportJWK(signing.privateKey)), kid: 'test-key-1', alg: 'RS256', use: 'sig' };
// Never published: signs the ID token of the "bad_signature" mode.
const rogue = await jose.generateKeyPair('RS256', { extractable: true });

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, clientId, error) {
  const alert = error ? `<p id="error" role="alert">${escapeHtml(error)}</p>` : '';
  return `<!doctype html><html><head><meta charset="utf-8"><title>Test OP sign-in</title></head>
<body><h1>Test OpenID Provider</h1><p>Sign in to continue to <code>${escapeHtml(clientId)}</code>.</p>${alert}
<form method="post" action="/interaction/${uid}/login">
<label for="login">Account</label> <input id="login" name="login" autofocus>
<label for="password">Password</label> <input id="password" name="password" type="password">
<button id="submit" type="submit">Sign in</button></form>
<form method="post" action="/interaction/${uid}/abort"><button id="cancel" type="submit">Cancel</button></form>
</body></html>`;
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

async function finishWithGrant(provider, req, res, details, accountId) {
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope(String(details.params.scope ?? 'openid'));
  const grantId = await grant.save();
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

async function interaction(provider, req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'text/plain', 'interaction mismatch');
  const clientId = String(details.params.client_id ?? '');
  if (action === undefined && req.method === 'GET') {
    if (details.prompt.name === 'consent' && details.session?.accountId) {
      return finishWithGrant(provider, req, res, details, details.session.accountId);
    }
    return send(res, 200, 'text/html; charset=utf-8', loginPage(uid, clientId));
  }
  if (req.method !== 'POST') return send(res, 405, 'text/plain', 'method not allowed');
  const form = new URLSearchParams(await readForm(req));
  if (action === '/abort') {
    return provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'End-User aborted interaction' },
      { mergeWithLastSubmission: false },
    );
  }
  const login = form.get('login') ?? '';
  const account = Object.hasOwn(accounts, login) ? accounts[login] : undefined;
  if (!account || account.password !== form.get('password')) {
    return send(res, 200, 'text/html; charset=utf-8', loginPage(uid, clientId, 'Invalid account or password.'));
  }
  return finishWithGrant(provider, req, res, details, login);
}

async function misbehave(body, issuer) {
  if (!mode || !body || typeof body !== 'object' || typeof body.id_token !== 'string') return;
  if (mode === 'no_id_token') {
    delete body.id_token;
    return;
  }
  const claims = jose.decodeJwt(body.id_token);
  const now = Math.floor(Date.now() / 1000);
  let key = signing.privateKey;
  switch (mode) {
    case 'wrong_nonce': claims.nonce = 'not-the-nonce-you-sent'; break;
    case 'wrong_audience': claims.aud = 'some-other-client'; break;
    case 'expired': claims.iat = now - 7200; claims.exp = now - 3600; break;
    case 'wrong_issuer': claims.iss = `${issuer}/other`; break;
    case 'bad_signature': key = rogue.privateKey; break;
    default: return;
  }
  body.id_token = await new jose.SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: signingJwk.kid, typ: 'JWT' })
    .sign(key);
}

const server = http.createServer();
server.listen(Number(process.env.OIDC_PORT ?? 0), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    adapter,
    jwks: { keys: [signingJwk] },
    cookies: { keys: ['test-cookie-key-0123456789'] },
    conformIdTokenClaims: process.env.OIDC_ID_TOKEN_CLAIMS !== 'true',
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username', 'picture', 'groups', 'role', 'realm_access'],
    },
    scopes: ['openid', 'email', 'profile', 'offline_access'],
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, i) => `/interaction/${i.uid}` },
    async findAccount(_ctx, id) {
      if (!Object.hasOwn(accounts, id)) return undefined;
      return { accountId: id, async claims() { return { sub: id, ...accounts[id].claims }; } };
    },
  });
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/token') await misbehave(ctx.body, issuer);
  });
  const oidc = provider.callback();
  server.on('request', async (req, res) => {
    try {
      const url = new URL(req.url, issuer);
      if (req.method === 'POST' && url.pathname === '/__test/clients') {
        const metadata = JSON.parse(await readForm(req));
        clients.set(metadata.client_id, {
          grant_types: ['authorization_code'],
          response_types: ['code'],
          ...metadata,
        });
        return send(res, 204, 'text/plain', '');
      }
      if (req.method === 'POST' && url.pathname === '/__test/mode') {
        mode = String(JSON.parse(await readForm(req)).mode ?? '');
        return send(res, 204, 'text/plain', '');
      }
      const match = url.pathname.match(/^\/interaction\/([\w-]+)(\/login|\/abort)?$/);
      if (match) return await interaction(provider, req, res, match[1], match[2]);
      return oidc(req, res);
    } catch (error) {
      console.error(error);
      if (!res.headersSent) send(res, 500, 'text/plain', String(error?.message ?? error));
    }
  });
  console.log(JSON.stringify({ issuer }));
});
