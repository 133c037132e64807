// /dashboard/: profile, documents (upload, summaries, polling), the question box, sign out.

import { goToSignIn, hasSession, messageOf } from './api';
import { initAsk } from './ask';
import { initDocuments } from './documents';
import { loadProfile } from './profile';
import { signOut } from './session';
import { byId, say, setBusy } from './ui';

export function initDashboard(): void {
  // Back after signing out must not show the last user's page from the back/forward cache:
  // a page restored from it is checked again, and without a session it leaves.
  window.addEventListener('pageshow', (event) => {
    if (event.persisted && !hasSession()) {
      document.body.hidden = true;
      location.replace('/signin/');
    }
  });
  // No CSRF cookie means no session (the edge sets and clears both together): skip the
  // requests that would only answer 401.
  if (!hasSession()) {
    goToSignIn();
    return;
  }
  initDocuments();
  initAsk();
  void loadProfile();

  const form = byId<HTMLFormElement>('signout-form');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void (async () => {
      const status = byId('profile-status');
      setBusy(form, true);
      say(status, 'Signing out…');
      try {
        await signOut();
        location.assign('/');
      } catch (err) {
        say(status, `Signing out failed: ${messageOf(err)}`, 'error');
        setBusy(form, false);
      }
    })();
  });
}
