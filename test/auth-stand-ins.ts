/**
 * Stand-ins for outside services that cannot run here, named as such: an OAuth 2.1 authorization
 * server (RFC 8414 metadata and a JWKS, with a real RS256 key pair from jose, signing real tokens) and
 * an Open Policy Agent speaking OPA's data API (`POST /v1/data/<path>` → `{"result": …}`). Both listen on
 * 127.0.0.1 only.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export interface AuthorizationServerStandIn {
  issuer: string;
  jwksUrl: string;
  /** An access token signed with the server's key. */
  token(claims: JWTPayload & { aud?: string | string[] }, expiresIn?: string | number): Promise<string>;
  /** How many times the JWKS was fetched. */
  jwksFetches(): number;
  close(): Promise<void>;
}

/** An authorization server stand-in: `/.well-known/oauth-authorization-server` and `/jwks.json`. */
export async function startAuthorizationServer(): Promise<AuthorizationServerStandIn> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'stand-in-1', alg: 'RS256', use: 'sig' };
  let fetches = 0;
  let issuer = '';
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/oauth-authorization-server') {
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks.json`, token_endpoint: `${issuer}/token` }));
    } else if (req.url === '/jwks.json') {
      fetches++;
      res.end(JSON.stringify({ keys: [jwk] }));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  issuer = await listen(server);
  return {
    issuer,
    jwksUrl: `${issuer}/jwks.json`,
    async token(claims, expiresIn = '5m') {
      const { aud, ...rest } = claims;
      const jwt = new SignJWT(rest)
        .setProtectedHeader({ alg: 'RS256', kid: 'stand-in-1' })
        .setIssuer(issuer)
        .setIssuedAt()
        .setExpirationTime(expiresIn);
      if (aud !== undefined) jwt.setAudience(aud);
      return jwt.sign(privateKey);
    },
    jwksFetches: () => fetches,
    close: () => closeServer(server),
  };
}

export interface OpaStandIn {
  endpoint: string;
  /** Every input OPA was asked about. */
  inputs: Record<string, unknown>[];
  /** What it answers next: a decision, or `down` (the connection is cut, as a dead server). */
  answer: 'allow' | 'deny' | 'down' | 'slow';
  close(): Promise<void>;
}

/** An OPA stand-in at `/v1/data/brain/allow`, answering `{"result": true|false}`. */
export async function startOpa(): Promise<OpaStandIn> {
  const state: OpaStandIn = {
    endpoint: '',
    inputs: [],
    answer: 'allow',
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      if (state.answer === 'down') {
        req.socket.destroy();
        return;
      }
      if (state.answer === 'slow') return; // never answers: the caller's timeout decides
      state.inputs.push((JSON.parse(body) as { input: Record<string, unknown> }).input);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ result: state.answer === 'allow' }));
    });
  });
  const base = await listen(server);
  state.endpoint = `${base}/v1/data/brain/allow`;
  state.close = () => closeServer(server);
  return state;
}
