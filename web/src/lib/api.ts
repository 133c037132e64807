// The one way the pages talk to the edge: same-origin relative URLs, the session cookie
// (never a bearer token), the CSRF double-submit header on unsafe methods, and every
// failure (network, FastAPI `{"detail": ...}`, RFC 9457 problem+json, plain text) turned
// into one ApiError with a message a person can read.

/** The readable cookie the edge sets beside the HttpOnly session cookie. */
export const CSRF_COOKIE = 'fastgate_csrf';
/** The header that echoes it on unsafe requests (double-submit). */
export const CSRF_HEADER = 'X-CSRF-Token';

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export class ApiError extends Error {
  /** HTTP status, or 0 when no answer arrived (network failure). */
  readonly status: number;
  /** Per-field messages from a FastAPI 422 (`loc: ["body", field]`), keyed by field name. */
  readonly fields: Readonly<Record<string, string>>;
  /** Seconds from `Retry-After`, when the answer carried one. */
  readonly retryAfter: number | null;

  constructor(
    message: string,
    status: number,
    fields: Record<string, string> = {},
    retryAfter: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.fields = fields;
    this.retryAfter = retryAfter;
  }
}

export interface RequestOptions {
  method?: string;
  /** Sent as `application/json`. */
  json?: unknown;
  headers?: Record<string, string>;
  /** On a 401, go to the sign-in page (default). Off for the sign-in call itself. */
  redirectOn401?: boolean;
}

/** The value of a cookie readable by scripts, or null. */
export function readCookie(name: string): string | null {
  for (const part of document.cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const raw = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(raw);
      } catch {
        return raw;
      }
    }
  }
  return null;
}

/** Whether the browser looks signed in (the CSRF cookie lives as long as the session). */
export function hasSession(): boolean {
  return readCookie(CSRF_COOKIE) !== null;
}

/** Leaves for the sign-in page, coming back to this page afterwards. */
export function goToSignIn(): void {
  const next = encodeURIComponent(location.pathname + location.search);
  location.assign(`/signin/?next=${next}`);
}

/**
 * One request to the edge. Resolves with the parsed JSON body, or null for an answer
 * without one (204, empty, not JSON). Rejects with ApiError only.
 */
export async function api<T = unknown>(path: string, options: RequestOptions = {}): Promise<T | null> {
  if (!path.startsWith('/') || path.startsWith('//')) {
    throw new ApiError('Only same-origin paths can be requested.', 0);
  }
  const method = (options.method ?? (options.json === undefined ? 'GET' : 'POST')).toUpperCase();
  const headers: Record<string, string> = {
    Accept: 'application/json, application/problem+json',
    ...options.headers,
  };
  let body: string | undefined;
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.json);
  }
  if (UNSAFE.has(method)) {
    const token = readCookie(CSRF_COOKIE);
    if (token !== null) headers[CSRF_HEADER] = token;
  }

  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body,
      credentials: 'same-origin',
      // Reads revalidate (ETag / If-None-Match, answered 304 by the edge or origin) instead of
      // trusting a stored copy: the same URL answers differently for each signed-in user.
      cache: method === 'GET' ? 'no-cache' : 'no-store',
    });
  } catch {
    throw new ApiError('Could not reach the service. Check your connection and try again.', 0);
  }

  if (res.status === 401 && options.redirectOn401 !== false) {
    goToSignIn();
    throw new ApiError('Your session has ended. Taking you to the sign-in page…', 401);
  }
  if (!res.ok) throw await errorFrom(res);
  if (res.status === 204 || res.status === 205) return null;

  const type = res.headers.get('Content-Type') ?? '';
  if (!/[/+]json\b/i.test(type)) return null;
  const text = await res.text().catch(() => '');
  if (text === '') return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError('The service sent an answer that could not be read.', res.status);
  }
}

async function errorFrom(res: Response): Promise<ApiError> {
  const retryHeader = Number(res.headers.get('Retry-After'));
  const retryAfter = Number.isFinite(retryHeader) && retryHeader > 0 ? retryHeader : null;
  let described: Described = { message: '', fields: {} };
  if (/[/+]json\b/i.test(res.headers.get('Content-Type') ?? '')) {
    try {
      described = describe(await res.json());
    } catch {
      // An unreadable error body: fall back to the status below.
    }
  }
  let message = described.message || fallbackMessage(res.status);
  if (retryAfter !== null && (res.status === 429 || res.status === 503)) {
    message += ` (Try again in ${retryAfter} s.)`;
  }
  return new ApiError(message, res.status, described.fields, retryAfter);
}

interface Described {
  message: string;
  fields: Record<string, string>;
}

/** Reads FastAPI's `{"detail": "..."}` / `{"detail": [{loc, msg}, ...]}` and problem+json. */
function describe(body: unknown): Described {
  const fields: Record<string, string> = {};
  if (!body || typeof body !== 'object') return { message: '', fields };
  const { detail, title } = body as { detail?: unknown; title?: unknown };
  if (typeof detail === 'string' && detail.trim()) return { message: detail, fields };
  if (Array.isArray(detail)) {
    const parts: string[] = [];
    for (const item of detail) {
      if (!item || typeof item !== 'object') continue;
      const { loc, msg } = item as { loc?: unknown; msg?: unknown };
      const text = typeof msg === 'string' && msg ? msg : 'Invalid value';
      const path = Array.isArray(loc) ? loc.filter((p) => p !== 'body') : [];
      const field = typeof path[0] === 'string' ? path[0] : '';
      if (field && !(field in fields)) fields[field] = text;
      parts.push(field ? `${field}: ${text}` : text);
    }
    return { message: parts.join('; '), fields };
  }
  if (typeof title === 'string' && title.trim()) return { message: title, fields };
  return { message: '', fields };
}

function fallbackMessage(status: number): string {
  if (status === 400) return 'The request was not accepted.';
  if (status === 401) return 'You need to sign in.';
  if (status === 403) return 'That was refused. Reload the page and try again.';
  if (status === 404) return 'Not found.';
  if (status === 409) return 'That is still being processed. Try again in a moment.';
  if (status === 413) return 'That is too large to send.';
  if (status === 429) return 'Too many requests. Wait a moment and try again.';
  if (status >= 500) return `The service had a problem (HTTP ${status}). Please try again.`;
  return `The request failed (HTTP ${status}).`;
}

/** A readable message for anything a promise rejected with. */
export function messageOf(err: unknown): string {
  if (err instanceof Error && err.message) return err.message;
  if (typeof err === 'string' && err) return err;
  return 'Something went wrong.';
}
