import { randomBytes } from 'node:crypto';

/** A JSON reply: status, headers and the parsed body. */
export interface Reply<T = Record<string, unknown>> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
}

/** Sends a JSON request to a running service, gateway or edge (`baseUrl` = http://127.0.0.1:<port>). */
export async function call<T = Record<string, unknown>>(
  baseUrl: string,
  method: string,
  path: string,
  options: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: (text === '' ? {} : JSON.parse(text)) as T,
  };
}

export interface TokenPairBody {
  accessToken: string;
  refreshToken: string;
  tokenType: string;
  expiresIn: number;
}

let counter = 0;

/** A unique, valid email for one test. */
export function uniqueEmail(label = 'user'): string {
  counter += 1;
  return `${label}-${counter}-${randomBytes(3).toString('hex')}@example.com`;
}

export const PASSWORD = 'correct horse battery staple';

/** Logs in (e.g. as `testStack().admin`); returns the token pair. */
export async function login(
  baseUrl: string,
  credentials: { readonly email: string; readonly password: string },
): Promise<TokenPairBody> {
  const reply = await call<TokenPairBody>(baseUrl, 'POST', '/v1/auth/login', {
    body: { email: credentials.email, password: credentials.password },
  });
  if (reply.status !== 200) {
    throw new Error(`login failed: ${reply.status} ${JSON.stringify(reply.body)}`);
  }
  return reply.body;
}

/** Registers an account and logs in; returns its id, email and token pair. */
export async function registerAndLogin(
  baseUrl: string,
  email = uniqueEmail(),
  password = PASSWORD,
): Promise<{ id: string; email: string; tokens: TokenPairBody }> {
  const registered = await call<{ id: string }>(baseUrl, 'POST', '/v1/users', {
    body: { email, password, name: 'Test User' },
  });
  if (registered.status !== 201) {
    throw new Error(`registration failed: ${registered.status} ${JSON.stringify(registered.body)}`);
  }
  return { id: registered.body.id, email, tokens: await login(baseUrl, { email, password }) };
}
