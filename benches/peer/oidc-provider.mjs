// The peer of `cargo bench --bench load -- --peer`: node-oidc-provider with its in-memory
// adapter, RS256 JWT access tokens for client_credentials (through resource indicators, the
// only way it issues JWT access tokens), introspection on. The load test installs the package
// into a temporary folder and runs this file there:
//   PORT=… CLIENT_ID=… CLIENT_SECRET=… node oidc-provider.mjs
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const api = 'https://api.example.com';
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'peer-1', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.CLIENT_ID,
    client_secret: process.env.CLIENT_SECRET,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  scopes: ['api:read'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => api,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => (resource === 'urn:peer:opaque'
        ? { scope: 'api:read', audience: resource, accessTokenTTL: 900, accessTokenFormat: 'opaque' }
        : {
          scope: 'api:read',
          audience: api,
          accessTokenTTL: 900,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
    },
  },
});
provider.listen(port, '127.0.0.1', () => console.log(`peer listening on ${issuer}`));
