// The session endpoints of the edge and the origin's sign-up. The session itself is an
// HttpOnly cookie the edge sets: nothing here ever sees or keeps a token.

import { api } from './api';

/** `POST /api/auth/signup` request (origin `SignupIn`). */
export interface SignupRequest {
  email: string;
  /** 8 to 128 characters. */
  password: string;
  full_name?: string | null;
}

/** `201` answer of `POST /api/auth/signup` (origin `SignupOut`). */
export interface SignupResponse {
  id: string;
  email: string;
  full_name: string | null;
}

/** `POST /session/login` → 204 + session cookie and `fastgate_csrf` cookie. */
export async function signIn(email: string, password: string): Promise<void> {
  await api('/session/login', { method: 'POST', json: { email, password }, redirectOn401: false });
}

/** `POST /session/logout` → 204, both cookies cleared. */
export async function signOut(): Promise<void> {
  await api('/session/logout', { method: 'POST', redirectOn401: false });
}

export async function signUp(input: SignupRequest): Promise<SignupResponse | null> {
  return api<SignupResponse>('/api/auth/signup', {
    method: 'POST',
    json: input,
    redirectOn401: false,
  });
}
