// The test IdP: the OpenID-certified `oidc-provider` (npm, pinned in scripts/lib.sh
// ensure_idp_tools) with a configuration for machines and long runs. Not a fake: every token,
// discovery document, JWKS and device-flow page is the library's own.
//
//   node tests/idp/oidc_provider.mjs <config.json>
//
// config.json (written by tests/e2e/harness/idp.py OidcProvider):
//   port, audience, resource, ttl (access-token lifetime, seconds), keys_path (private JWKS,
//   created on first start, reused on restart so tokens stay verifiable), clients (oidc-provider
//   client metadata plus `tenant_id` / `roles`), accounts ({login: {tenant_id, roles}}),
//   token_log (optional: a file that gets one JSON line per token response, so that a test can
//   prove no token the IdP issued shows up in a cookie or a log).
// Browser sign-in (auth code + PKCE): a client allowed authorization_code and
// refresh_token gets a refresh token without asking for offline_access; such a refresh token
// (like the library's default for a grant without offline_access) ends with the person's IdP
// session, so RP-initiated logout or a restart of this in-memory IdP makes refreshing fail.
// The access token of the code flow is the JWT for `resource` (defaultResource +
// useGrantedResource), with the account's tenant_id / roles, exactly like the bearer tokens.
// Binds 127.0.0.1 only. Prints "oidc-provider listening <issuer>" when ready.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const modules = process.env.IDP_NODE_PATH;
if (!modules) throw new Error('IDP_NODE_PATH (node_modules holding oidc-provider) is not set');
const { default: Provider } = await import(pathToFileURL(join(modules, 'oidc-provider', 'lib', 'index.js')).href);

let keys;
if (existsSync(cfg.keys_path)) {
  keys = JSON.parse(readFileSync(cfg.keys_path, 'utf8'));
} else {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  keys = { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' }] };
  writeFileSync(cfg.keys_path, JSON.stringify(keys), { mode: 0o600 });
}

const issuer = `http://127.0.0.1:${cfg.port}`;
const accounts = cfg.accounts || {};
const clientsById = Object.fromEntries(cfg.clients.map((c) => [c.client_id, c]));

const provider = new Provider(issuer, {
  clients: cfg.clients,
  jwks: keys,
  cookies: { keys: [randomUUID()] },
  extraClientMetadata: { properties: ['tenant_id', 'roles'] },
  findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
  // tenant and roles on every access token: a machine's from its client registration, a
  // person's (device flow, refresh) from the account table.
  extraTokenClaims: async (_ctx, token) => {
    if (token.kind === 'ClientCredentials') {
      const c = clientsById[token.clientId] || {};
      return { tenant_id: c.tenant_id, roles: c.roles };
    }
    const a = accounts[token.accountId];
    return a ? { tenant_id: a.tenant_id, roles: a.roles } : {};
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => cfg.resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        if (resource !== cfg.resource) throw new Provider.errors.InvalidTarget();
        return {
          scope: 'mlflow',
          audience: cfg.audience,
          accessTokenTTL: cfg.ttl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  scopes: ['openid', 'offline_access', 'mlflow'],
  // The library's default, plus: a browser sign-in client (authorization_code and refresh_token
  // allowed) gets a refresh token without offline_access. It expires with the IdP session
  // (expiresWithSession stays the default: no offline_access -> bound to the session). The
  // device-flow client (no authorization_code) keeps the default (offline_access needed).
  issueRefreshToken: async (_ctx, client, source) => client.grantTypeAllowed('refresh_token')
    && (source.scopes.has('offline_access') || client.grantTypeAllowed('authorization_code')),
  ttl: {
    AccessToken: cfg.ttl,
    ClientCredentials: cfg.ttl,
    DeviceCode: 300,
    Grant: 3600,
    IdToken: 3600,
    Interaction: 600,
    RefreshToken: 3600,
    Session: 3600,
  },
  // The device flow's user is asked for consent once; offline_access then yields a refresh
  // token (the library's default policy).
});
provider.on('server_error', (_ctx, err) => console.error('server_error', err));
if (cfg.token_log) {
  // Every token the IdP hands out (access, refresh, ID token), for the tests' leak checks.
  provider.on('grant.success', (ctx) => {
    const b = ctx.body || {};
    const line = { grant_type: ctx.oidc.params?.grant_type, client_id: ctx.oidc.client?.clientId };
    for (const k of ['access_token', 'refresh_token', 'id_token']) if (b[k]) line[k] = b[k];
    appendFileSync(cfg.token_log, `${JSON.stringify(line)}\n`);
  });
}

provider.listen(cfg.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening ${issuer}`);
});
