// openid-client (panva, npm) as a relying party of LaventeCare Auth, driven by
// tests/it/openid_client.rs: discovery, a pushed authorization request (RFC 9126) with PKCE,
// then the code grant, UserInfo and a refresh, each checked by the library itself (ID token
// signature and claims, `iss` in the authorization response, state, nonce). With DPOP=1 every
// request carries a DPoP proof (RFC 9449) of an ES256 key made here, the library answering the
// provider's `use_dpop_nonce` itself.
//
// Protocol on stdio, one JSON object per line: it prints {"authorization_url"}, reads the
// callback URL the browser was sent to, and prints {"claims", "scope", "userinfo",
// "refreshed_scope", "token_type", "refreshed_token_type", "access_token"}; on any failure it
// prints {"error"} and exits 1.
import * as client from 'openid-client';
import * as readline from 'node:readline';

const { ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, DPOP } = process.env;
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (value) => process.stdout.write(JSON.stringify(value) + '\n');

try {
  const config = await client.discovery(new URL(ISSUER), CLIENT_ID, undefined,
    client.ClientSecretBasic(CLIENT_SECRET), { execute: [client.allowInsecureRequests] });
  const options = DPOP === '1' ? { DPoP: client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256')) } : {};
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  }, options);
  say({ authorization_url: url.href });
  const callback = (await lines.next()).value;
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  }, undefined, options);
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, options);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, options);
  say({
    claims,
    scope: tokens.scope,
    userinfo,
    refreshed_scope: refreshed.scope,
    token_type: tokens.token_type,
    refreshed_token_type: refreshed.token_type,
    access_token: refreshed.access_token,
  });
  process.exit(0);
} catch (e) {
  say({ error: `${e.name}: ${e.message} ${e.code ?? ''} ${JSON.stringify(e.cause ?? null)}` });
  process.exit(1);
}
