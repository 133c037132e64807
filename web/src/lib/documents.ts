// The dashboard's documents: upload text (POST /api/uploads {content} → 202 {status, key}),
// list summaries (GET /api/summaries → [{key, summary, created_at}]), and poll while an
// upload of this page has no summary yet: every 2 s, backing off to 15 s while nothing
// changes, paused while the tab is hidden, stopped when all are done (or after 10 minutes).

import { api, ApiError, messageOf } from './api';
import { byId, clearFieldErrors, fieldError, say, setBusy, showFailure } from './ui';

/** Origin `SummaryOut`; `key` is the upload's key, `created_at` an ISO timestamp. */
export interface Summary {
  key: string;
  summary: string;
  created_at: string;
}

/** Origin `UploadOut` (202): `status` is `"processing"`, `key` is `uploads/<uuid>`. */
export interface UploadAccepted {
  status: string;
  key: string;
}

/** Largest file read into the text box. */
export const MAX_FILE_BYTES = 512 * 1024;
/** The edge's default `limits.max_body_bytes` is 1 MiB; the JSON around the text counts too. */
export const MAX_BODY_BYTES = 1_000_000;
const POLL_FIRST_MS = 2_000;
const POLL_MAX_MS = 15_000;
const POLL_GIVE_UP_MS = 10 * 60_000;
const UPLOAD_ATTEMPTS = 3;

interface Pending {
  key: string;
  preview: string;
}

const pending = new Map<string, Pending>();
let summaries: Summary[] = [];
let loaded = false;
let timer: ReturnType<typeof setTimeout> | undefined;
let delay = POLL_FIRST_MS;
let pollingSince = 0;
let waitingForVisible = false;
let inFlight: Promise<void> | null = null;

function isSummary(x: unknown): x is Summary {
  if (!x || typeof x !== 'object') return false;
  const s = x as Record<string, unknown>;
  return typeof s.key === 'string' && typeof s.summary === 'string';
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function kb(bytes: number): string {
  return bytes < 1024 ? `${bytes} bytes` : `${Math.ceil(bytes / 1024)} KB`;
}

/** `uploads/3f2a9c1b-…` → `Document 3f2a9c1b`. */
function docName(key: string): string {
  const id = key.split('/').pop() ?? key;
  return `Document ${id.slice(0, 8)}`;
}

function formatTime(iso: string): string {
  const date = new Date(iso.replace(/(\.\d{3})\d+/, '$1'));
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

function preview(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 120 ? `${flat.slice(0, 120)}…` : flat;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function pendingItem(p: Pending): HTMLLIElement {
  const li = el('li', '');
  li.setAttribute('aria-busy', 'true');
  const meta = el('div', 'doc-meta');
  meta.append(el('span', 'doc-key', docName(p.key)), el('span', 'badge', 'Summarising…'));
  li.append(meta, el('p', 'doc-summary muted', p.preview ? `“${p.preview}”` : ''));
  return li;
}

function summaryItem(s: Summary): HTMLLIElement {
  const li = el('li', '');
  const meta = el('div', 'doc-meta');
  meta.append(el('span', 'doc-key', docName(s.key)));
  if (typeof s.created_at === 'string' && s.created_at) {
    const time = el('time', '', formatTime(s.created_at));
    time.dateTime = s.created_at;
    meta.append(time);
  }
  const summary = s.summary.trim();
  li.append(
    meta,
    summary
      ? el('p', 'doc-summary', summary)
      : el('p', 'doc-summary muted', 'No summary: the text had no sentences to pick.'),
  );
  return li;
}

function render(): void {
  const list = byId('docs-list');
  const newestFirst = [...summaries].reverse();
  list.replaceChildren(
    ...[...pending.values()].reverse().map(pendingItem),
    ...newestFirst.map(summaryItem),
  );
  byId('docs-empty').hidden = !loaded || list.childElementCount > 0;
}

function showProgress(justFinished: boolean): void {
  const status = byId('docs-status');
  if (pending.size > 0) {
    say(status, `Summarising ${plural(pending.size, 'document', 'documents')}… This list updates by itself.`);
  } else if (justFinished) {
    say(status, 'Summary ready.', 'ok');
  }
}

/** One GET /api/summaries at a time; concurrent callers share it. */
function refresh(): Promise<void> {
  inFlight ??= (async () => {
    try {
      const list = await api<Summary[]>('/api/summaries');
      summaries = Array.isArray(list) ? list.filter(isSummary) : [];
      loaded = true;
      let finished = false;
      for (const s of summaries) finished = pending.delete(s.key) || finished;
      render();
      showProgress(finished);
    } finally {
      inFlight = null;
    }
  })();
  return inFlight;
}

function schedule(): void {
  clearTimeout(timer);
  timer = undefined;
  if (pending.size === 0) {
    pollingSince = 0;
    return;
  }
  if (Date.now() - pollingSince > POLL_GIVE_UP_MS) {
    pollingSince = 0;
    say(byId('docs-status'), 'Still summarising. Automatic checking has stopped: use “Check now” later.');
    return;
  }
  timer = setTimeout(() => void tick(), delay);
}

function startPolling(): void {
  pollingSince = Date.now();
  delay = POLL_FIRST_MS;
  schedule();
}

async function tick(): Promise<void> {
  timer = undefined;
  if (document.hidden) {
    waitingForVisible = true;
    return;
  }
  const before = pending.size;
  try {
    await refresh();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    say(byId('docs-status'), `Could not check for summaries: ${messageOf(err)} Retrying…`, 'error');
  }
  delay = pending.size < before ? POLL_FIRST_MS : Math.min(Math.round(delay * 1.5), POLL_MAX_MS);
  schedule();
}

function randomKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Sends the upload, retrying lost answers and busy origins under one Idempotency-Key. */
async function sendUpload(content: string, onRetry: (attempt: number) => void): Promise<UploadAccepted | null> {
  const headers = { 'Idempotency-Key': `"${randomKey()}"` };
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await api<UploadAccepted>('/api/uploads', { method: 'POST', json: { content }, headers });
    } catch (err) {
      // 0: no answer arrived; 409: the first try is still running; 50x: busy or failing over.
      const transient = [0, 409, 502, 503, 504];
      if (!(err instanceof ApiError) || !transient.includes(err.status) || attempt >= UPLOAD_ATTEMPTS) {
        throw err;
      }
      onRetry(attempt + 1);
      await sleep(Math.min((err.retryAfter ?? attempt) * 1000, 10_000));
    }
  }
}

export function initDocuments(): void {
  const form = byId<HTMLFormElement>('upload-form');
  const status = byId('upload-status');
  const file = byId<HTMLInputElement>('upload-file');
  const content = byId<HTMLTextAreaElement>('upload-content');
  const docsStatus = byId('docs-status');

  file.addEventListener('change', () => void readChosenFile());
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void submit();
  });
  byId<HTMLFormElement>('docs-refresh').addEventListener('submit', (event) => {
    event.preventDefault();
    void checkNow();
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && waitingForVisible) {
      waitingForVisible = false;
      void tick();
    }
  });

  void firstLoad();

  async function firstLoad(): Promise<void> {
    say(docsStatus, 'Loading your documents…');
    try {
      await refresh();
      if (pending.size === 0) say(docsStatus, '');
    } catch (err) {
      say(docsStatus, `Could not load your documents: ${messageOf(err)}`, 'error');
    }
  }

  async function checkNow(): Promise<void> {
    say(docsStatus, 'Checking…');
    try {
      await refresh();
      if (pending.size > 0) startPolling();
      else say(docsStatus, 'Up to date.', 'ok');
    } catch (err) {
      say(docsStatus, `Could not load your documents: ${messageOf(err)}`, 'error');
    }
  }

  async function readChosenFile(): Promise<void> {
    clearFieldErrors(form);
    const chosen = file.files?.[0];
    if (!chosen) return;
    const reject = (message: string): void => {
      file.value = '';
      fieldError(form, 'file', message);
      say(status, 'Please choose another file.', 'error');
    };
    if (chosen.size > MAX_FILE_BYTES) {
      reject(`“${chosen.name}” is ${kb(chosen.size)}; the limit is ${kb(MAX_FILE_BYTES)}.`);
      return;
    }
    try {
      const text = await chosen.text();
      if (text.includes('\u0000')) {
        reject(`“${chosen.name}” does not look like a text file.`);
        return;
      }
      content.value = text;
      say(status, `Loaded “${chosen.name}” (${kb(chosen.size)}). Check the text below, then upload it.`, 'ok');
    } catch (err) {
      reject(`Could not read “${chosen.name}”: ${messageOf(err)}`);
    }
  }

  async function submit(): Promise<void> {
    clearFieldErrors(form);
    const text = content.value;
    if (!text.trim()) {
      fieldError(form, 'content', 'Paste some text or choose a file first.');
      say(status, 'Please correct the highlighted field.', 'error');
      content.focus();
      return;
    }
    const size = new TextEncoder().encode(JSON.stringify({ content: text })).length;
    if (size > MAX_BODY_BYTES) {
      fieldError(form, 'content', `This text is ${kb(size)} to send; the limit is ${kb(MAX_BODY_BYTES)}.`);
      say(status, 'Please correct the highlighted field.', 'error');
      content.focus();
      return;
    }
    setBusy(form, true);
    say(status, `Uploading ${kb(size)}…`);
    try {
      const out = await sendUpload(text, (attempt) =>
        say(status, `The connection had trouble; trying again (attempt ${attempt} of ${UPLOAD_ATTEMPTS})…`),
      );
      if (!out || typeof out.key !== 'string') {
        throw new ApiError('The upload was sent, but its answer could not be read. Use “Check now” in a moment.', 202);
      }
      pending.set(out.key, { key: out.key, preview: preview(text) });
      form.reset();
      say(status, 'Uploaded. Its summary will appear under “Your documents” when it is ready.', 'ok');
      loaded = true;
      render();
      showProgress(false);
      startPolling();
    } catch (err) {
      showFailure(form, status, err);
    } finally {
      setBusy(form, false);
    }
  }
}
