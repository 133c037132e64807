// The dashboard's question box: POST /api/query {query} → {answer, sources}, answered from
// the caller's own uploads only.

import { api } from './api';
import { byId, clearFieldErrors, fieldError, say, setBusy, showFailure } from './ui';

/** Origin `QueryIn`: 1 to 2000 characters. */
export const MAX_QUERY = 2000;

/** Origin `AnswerOut`: `sources` counts matching sentences (a number, not a list). */
export interface Answer {
  answer: string;
  sources: number;
}

export function initAsk(): void {
  const form = byId<HTMLFormElement>('ask-form');
  const status = byId('ask-status');
  const result = byId('answer');
  const text = byId('answer-text');
  const sources = byId('answer-sources');

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void submit();
  });

  async function submit(): Promise<void> {
    clearFieldErrors(form);
    const query = String(new FormData(form).get('query') ?? '').trim();
    if (!query || [...query].length > MAX_QUERY) {
      fieldError(form, 'query', query ? `Use at most ${MAX_QUERY} characters.` : 'Type a question first.');
      say(status, 'Please correct the highlighted field.', 'error');
      byId('ask-query').focus();
      return;
    }
    setBusy(form, true);
    say(status, 'Searching your documents…');
    try {
      const out = await api<Answer>('/api/query', { method: 'POST', json: { query } });
      const answer = out?.answer?.trim() ?? '';
      const count = typeof out?.sources === 'number' ? out.sources : 0;
      if (answer) {
        text.textContent = answer;
        sources.textContent =
          count === 1
            ? 'Based on 1 matching sentence in your documents.'
            : `Based on ${count} matching sentences in your documents.`;
        say(status, 'Answer ready.', 'ok');
      } else {
        text.textContent = 'No answer was found in your documents.';
        sources.textContent = 'Upload some text first, or try other words.';
        say(status, 'No answer found.');
      }
      result.hidden = false;
    } catch (err) {
      showFailure(form, status, err);
    } finally {
      setBusy(form, false);
    }
  }
}
