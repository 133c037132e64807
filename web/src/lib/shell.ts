// Runs on every page: shows the navigation for the signed-in or signed-out state, and turns
// any error no handler caught into a message in the page (never the console).

import { hasSession, messageOf } from './api';

/** Shows `[data-when="in"]` links when signed in and `[data-when="out"]` ones otherwise. */
export function updateNav(): void {
  const signedIn = hasSession();
  for (const el of document.querySelectorAll<HTMLElement>('[data-when]')) {
    el.hidden = (el.dataset.when === 'in') !== signedIn;
  }
}

function report(err: unknown): void {
  const region = document.getElementById('app-status');
  if (!region) return;
  region.textContent = `Something went wrong: ${messageOf(err)}`;
  region.dataset.kind = 'error';
}

export function initShell(): void {
  window.addEventListener('unhandledrejection', (event) => {
    event.preventDefault();
    report(event.reason);
  });
  window.addEventListener('error', (event) => {
    event.preventDefault();
    report(event.error ?? event.message);
  });
  updateNav();
}
