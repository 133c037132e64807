// Small DOM helpers shared by the pages: status regions, busy forms, field errors.

import { ApiError, messageOf } from './api';

export type StatusKind = 'info' | 'ok' | 'error';

/** An element the page must have; a missing one is a build mistake, reported in the page. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`This page is missing #${id}.`);
  return el as T;
}

/** Writes a message into an `aria-live` status region (unchanged text is not re-announced). */
export function say(region: HTMLElement, text: string, kind: StatusKind = 'info'): void {
  if (region.textContent !== text) region.textContent = text;
  if (text) region.dataset.kind = kind;
  else delete region.dataset.kind;
}

/** Disables a form's submit button while its request runs. */
export function setBusy(form: HTMLFormElement, busy: boolean): void {
  form.setAttribute('aria-busy', String(busy));
  for (const button of form.querySelectorAll<HTMLButtonElement>('button[type="submit"], button:not([type])')) {
    button.disabled = busy;
  }
}

function control(form: HTMLFormElement, name: string): HTMLInputElement | HTMLTextAreaElement | null {
  const el = form.elements.namedItem(name);
  return el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement ? el : null;
}

/** The `<p id="<control id>-error">` that explains a control's error. */
function errorSlot(el: HTMLElement): HTMLElement | null {
  return el.id ? document.getElementById(`${el.id}-error`) : null;
}

export function clearFieldErrors(form: HTMLFormElement): void {
  for (const el of form.querySelectorAll<HTMLElement>('[aria-invalid="true"]')) {
    el.removeAttribute('aria-invalid');
    const slot = errorSlot(el);
    if (slot) slot.textContent = '';
  }
}

/** Marks one control invalid with a message; returns false when the form has no such control. */
export function fieldError(form: HTMLFormElement, name: string, message: string): boolean {
  const el = control(form, name);
  if (!el) return false;
  el.setAttribute('aria-invalid', 'true');
  const slot = errorSlot(el);
  if (slot) slot.textContent = message;
  return true;
}

/**
 * Shows a failure: per-field messages next to their controls (and focus on the first one),
 * and a summary in the form's status region.
 */
export function showFailure(form: HTMLFormElement, region: HTMLElement, err: unknown): void {
  let placed = 0;
  if (err instanceof ApiError) {
    for (const [name, message] of Object.entries(err.fields)) {
      if (fieldError(form, name, message)) placed += 1;
    }
  }
  const all = err instanceof ApiError ? Object.keys(err.fields).length : 0;
  say(
    region,
    placed > 0 && placed === all ? 'Please correct the highlighted field.' : messageOf(err),
    'error',
  );
  if (placed > 0) form.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
}

/** A path on this site to go to after signing in: `?next=` if it is one, else the dashboard. */
export function nextPath(): string {
  const next = new URLSearchParams(location.search).get('next') ?? '';
  const local = next.startsWith('/') && !next.startsWith('//') && !next.includes('\\');
  if (local && !next.startsWith('/signout') && !next.startsWith('/signin')) return next;
  return '/dashboard/';
}
