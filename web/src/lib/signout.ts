// /signout/: POST /session/logout as soon as the page opens, then offer the way home.

import { ApiError, hasSession, messageOf } from './api';
import { signOut } from './session';
import { updateNav } from './shell';
import { byId, say } from './ui';

export function initSignout(): void {
  const status = byId('signout-status');
  const retry = byId<HTMLFormElement>('signout-retry');

  retry.addEventListener('submit', (event) => {
    event.preventDefault();
    void run();
  });
  void run();

  async function run(): Promise<void> {
    retry.hidden = true;
    if (!hasSession()) {
      // The edge clears both cookies together: without the CSRF cookie there is no session.
      say(status, 'You are signed out.', 'ok');
      updateNav();
      return;
    }
    say(status, 'Signing you out…');
    try {
      await signOut();
      say(status, 'You are signed out.', 'ok');
    } catch (err) {
      // A session that had already ended: nothing left to end.
      if (err instanceof ApiError && err.status === 401) {
        say(status, 'You are signed out.', 'ok');
      } else {
        say(status, `Signing out failed: ${messageOf(err)}`, 'error');
        retry.hidden = false;
      }
    }
    updateNav();
  }
}
