// The test IdP: the OpenID-certified `oidc-provider` (npm, pinned in scripts/lib.sh
// ensure_idp_tools) with a configuration for machines and long runs. Not a fake: every token,
// discovery document, JWKS and device-flow page is the library's own.
//
//   node tests/idp/oidc_provider.mjs <config.json>
//
// config.json (written by tests/e2e/conftest.py OidcProvider):
//   port, audience, resource, ttl (access-token lifetime, seconds), keys_path (private JWKS,
//   created on first start, reused on restart so tokens stay verifiable), clients (oidc-provider
//   client metadata plus `tenant_id` / `roles`), accounts ({login: {tenant_id, roles}}).
// Binds 127.0.0.1 only. Prints "oidc-provider listening <issuer>" when ready.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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

provider.listen(cfg.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening ${issuer}`);
});
