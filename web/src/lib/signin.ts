// /signin/: POST /session/login, then on to the page that sent us here (or the dashboard).

import { signIn } from './session';
import { byId, clearFieldErrors, nextPath, say, setBusy, showFailure } from './ui';

export function initSignin(): void {
  const form = byId<HTMLFormElement>('signin-form');
  const status = byId('signin-status');
  const params = new URLSearchParams(location.search);
  if (params.has('next')) say(status, 'Please sign in to continue.');

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void submit();
  });

  async function submit(): Promise<void> {
    clearFieldErrors(form);
    const data = new FormData(form);
    const email = String(data.get('email') ?? '').trim();
    const password = String(data.get('password') ?? '');
    setBusy(form, true);
    say(status, 'Signing in…');
    try {
      await signIn(email, password);
      say(status, 'Signed in. Opening your dashboard…', 'ok');
      location.assign(nextPath());
    } catch (err) {
      showFailure(form, status, err);
      setBusy(form, false);
    }
  }
}
