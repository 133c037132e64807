#!/usr/bin/env node
// A stand-in for the edge, for working on the front end without it: serves dist/ and
// answers the session contract and the API routes the pages use, in memory, with the
// origin's shapes. Not the real thing: no rate limits, no KV Store, no origin.
//
//   npm run build && npm run mock        # http://127.0.0.1:4322/
//
// Options (environment): PORT (default 4322), SUMMARY_DELAY_MS (default 3000).

import { createServer } from 'node:http';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST = fileURLToPath(new URL('../dist/', import.meta.url));
const PORT = Number(process.env.PORT ?? 4322);
const SUMMARY_DELAY_MS = Number(process.env.SUMMARY_DELAY_MS ?? 3000);
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
};

/** email -> {password, full_name, joined, docs: [{key, content, summary, created_at}]} */
const users = new Map();
/** session id -> {email} */
const sessions = new Map();

function cookies(req) {
  const out = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, headers);
  res.end(body);
}

function json(res, status, value, headers = {}) {
  send(res, status, JSON.stringify(value), { 'Content-Type': 'application/json', ...headers });
}

function problem(res, status, title, detail) {
  const body = { type: 'about:blank', title, status, detail, instance: randomUUID() };
  send(res, status, JSON.stringify(body), { 'Content-Type': 'application/problem+json' });
}

/** A GET answer with a strong ETag, 304 on a matching If-None-Match. */
function tagged(req, res, value) {
  const body = JSON.stringify(value);
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
  const headers = { ETag: etag, 'Cache-Control': 'private, no-cache' };
  if ((req.headers['if-none-match'] ?? '').split(',').some((t) => t.trim() === etag)) {
    return send(res, 304, undefined, headers);
  }
  send(res, 200, body, { 'Content-Type': 'application/json', ...headers });
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 1024 * 1024) throw Object.assign(new Error('too large'), { status: 413 });
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
  } catch {
    throw Object.assign(new Error('bad json'), { status: 422 });
  }
}

/** FastAPI's 422 for the fields that are missing or not strings. */
function invalid(res, body, fields) {
  const detail = fields
    .filter(([name, min, max]) => {
      const v = body?.[name];
      return typeof v !== 'string' || [...v].length < min || (max && [...v].length > max);
    })
    .map(([name, min]) => ({
      type: body?.[name] === undefined ? 'missing' : 'string_too_short',
      loc: ['body', name],
      msg: body?.[name] === undefined ? 'Field required' : `String should have at least ${min} characters`,
      input: body?.[name] ?? null,
    }));
  if (detail.length) json(res, 422, { detail });
  return detail.length > 0;
}

function session(req) {
  const sid = cookies(req).fastgate_session;
  return sid ? sessions.get(sid) : undefined;
}

const cookieAttrs = 'Path=/; SameSite=Strict';

async function handle(req, res) {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname;
  const unsafe = !['GET', 'HEAD', 'OPTIONS'].includes(req.method ?? 'GET');

  if (path === '/session/login' && req.method === 'POST') {
    const body = await readJson(req);
    const user = users.get(String(body?.email ?? '').toLowerCase());
    if (!user || user.password !== body?.password) {
      return problem(res, 401, 'Unauthorized', 'Incorrect email or password');
    }
    const sid = randomBytes(24).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    sessions.set(sid, { email: user.email });
    res.setHeader('Set-Cookie', [
      `fastgate_session=${sid}; HttpOnly; ${cookieAttrs}`,
      `fastgate_csrf=${csrf}; ${cookieAttrs}`,
    ]);
    return send(res, 204);
  }
  if (path === '/api/auth/signup' && req.method === 'POST') {
    const body = await readJson(req);
    if (invalid(res, body, [['email', 3], ['password', 8, 128]])) return;
    const email = body.email.toLowerCase();
    if (!email.includes('@')) {
      return json(res, 422, {
        detail: [{ type: 'value_error', loc: ['body', 'email'], msg: 'value is not a valid email address: An email address must have an @-sign.', input: body.email }],
      });
    }
    if (users.has(email)) return json(res, 400, { detail: 'The user with this email already exists' });
    const id = randomUUID();
    const full_name = typeof body.full_name === 'string' ? body.full_name : null;
    users.set(email, { id, email, password: body.password, full_name, joined: new Date().toISOString().slice(0, 10), docs: [] });
    return json(res, 201, { id, email, full_name });
  }

  if (path.startsWith('/session/') || path.startsWith('/api/')) {
    const s = session(req);
    if (unsafe) {
      // Double-submit: the header must repeat the readable cookie.
      const sent = req.headers['x-csrf-token'];
      if (!sent || sent !== cookies(req).fastgate_csrf) {
        return problem(res, 403, 'Forbidden', 'Missing or wrong CSRF token');
      }
    }
    if (!s) return problem(res, 401, 'Unauthorized', 'Sign in first');
    const user = users.get(s.email);

    if (path === '/session/logout' && req.method === 'POST') {
      sessions.delete(cookies(req).fastgate_session);
      res.setHeader('Set-Cookie', [
        `fastgate_session=; Max-Age=0; HttpOnly; ${cookieAttrs}`,
        `fastgate_csrf=; Max-Age=0; ${cookieAttrs}`,
      ]);
      return send(res, 204);
    }
    if (path === '/api/user/profile' && req.method === 'GET') {
      return tagged(req, res, { email: user.email, joined: user.joined });
    }
    if (path === '/api/summaries' && req.method === 'GET') {
      const done = user.docs.filter((d) => d.summary !== null);
      return tagged(req, res, done.map(({ key, summary, created_at }) => ({ key, summary, created_at })));
    }
    if (path === '/api/uploads' && req.method === 'POST') {
      const body = await readJson(req);
      if (invalid(res, body, [['content', 1]])) return;
      const doc = { key: `uploads/${randomUUID()}`, content: body.content, summary: null, created_at: '' };
      user.docs.push(doc);
      setTimeout(() => {
        const sentences = doc.content.split(/(?<=[.!?])\s+/).filter(Boolean);
        doc.summary = sentences.slice(0, 2).join(' ');
        doc.created_at = new Date().toISOString().replace('Z', '000+00:00');
      }, SUMMARY_DELAY_MS);
      return json(res, 202, { status: 'processing', key: doc.key });
    }
    if (path === '/api/query' && req.method === 'POST') {
      const body = await readJson(req);
      if (invalid(res, body, [['query', 1, 2000]])) return;
      const terms = new Set(body.query.toLowerCase().match(/\w+/g) ?? []);
      const hits = user.docs
        .flatMap((d) => d.content.split(/(?<=[.!?])\s+/))
        .filter((s) => (s.toLowerCase().match(/\w+/g) ?? []).some((w) => terms.has(w)));
      return json(res, 200, { answer: hits.slice(0, 3).join(' '), sources: hits.length });
    }
    return json(res, 404, { detail: 'Not Found' });
  }

  if (req.method !== 'GET' && req.method !== 'HEAD') return problem(res, 405, 'Method Not Allowed', 'Static files are GET only');
  let file = normalize(join(DIST, decodeURIComponent(path)));
  if (!file.startsWith(DIST)) return problem(res, 404, 'Not Found', 'No such file');
  try {
    if ((await stat(file)).isDirectory()) file = join(file, 'index.html');
    const cache = path.startsWith('/_astro/') ? 'public, max-age=31536000, immutable' : 'no-cache';
    return send(res, 200, await readFile(file), {
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Cache-Control': cache,
    });
  } catch {
    if (!extname(path) && !path.endsWith('/')) {
      return send(res, 308, undefined, { Location: `${path}/${url.search}` });
    }
    return send(res, 404, await readFile(join(DIST, '404.html')).catch(() => 'Not Found'), {
      'Content-Type': 'text/html; charset=utf-8',
    });
  }
}

createServer((req, res) => {
  handle(req, res).catch((err) => {
    if (!res.headersSent) problem(res, err.status ?? 500, 'Error', err.message);
  });
}).listen(PORT, '127.0.0.1', () => {
  process.stdout.write(`mock edge on http://127.0.0.1:${PORT}/ serving ${DIST}\n`);
});
