// /signup/: POST /api/auth/signup, then sign in through POST /session/login.

import { signIn, signUp } from './session';
import { byId, clearFieldErrors, fieldError, say, setBusy, showFailure } from './ui';

export function initSignup(): void {
  const form = byId<HTMLFormElement>('signup-form');
  const status = byId('signup-status');

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void submit();
  });

  async function submit(): Promise<void> {
    clearFieldErrors(form);
    const data = new FormData(form);
    const email = String(data.get('email') ?? '').trim();
    const password = String(data.get('password') ?? '');
    const fullName = String(data.get('full_name') ?? '').trim();
    const length = [...password].length;
    if (length < 8 || length > 128) {
      fieldError(form, 'password', 'Use 8 to 128 characters.');
      say(status, 'Please correct the highlighted field.', 'error');
      byId('signup-password').focus();
      return;
    }

    setBusy(form, true);
    say(status, 'Creating your account…');
    try {
      await signUp(fullName ? { email, password, full_name: fullName } : { email, password });
    } catch (err) {
      showFailure(form, status, err);
      setBusy(form, false);
      return;
    }
    say(status, 'Account created. Signing you in…', 'ok');
    try {
      await signIn(email, password);
      location.assign('/dashboard/');
    } catch (err) {
      const message = err instanceof Error ? err.message : '';
      say(status, `Your account was created, but signing in failed: ${message} Use the sign-in page.`, 'error');
      byId('signup-signin-link').hidden = false;
      setBusy(form, false);
    }
  }
}
