// The dashboard's profile card: GET /api/user/profile → {email, joined}.

import { api, messageOf } from './api';
import { byId, say } from './ui';

/** Origin `ProfileOut`. `joined` is an ISO date, e.g. `2024-06-01`. */
export interface Profile {
  email: string;
  joined: string;
}

export function formatDay(isoDay: string): string {
  const date = new Date(`${isoDay.slice(0, 10)}T00:00:00Z`);
  if (Number.isNaN(date.getTime())) return isoDay;
  return date.toLocaleDateString(undefined, { dateStyle: 'long', timeZone: 'UTC' });
}

export async function loadProfile(): Promise<void> {
  const status = byId('profile-status');
  try {
    const profile = await api<Profile>('/api/user/profile');
    if (!profile) throw new Error('The profile answer was empty.');
    byId('profile-email').textContent = profile.email;
    const joined = byId<HTMLTimeElement>('profile-joined');
    joined.dateTime = profile.joined;
    joined.textContent = formatDay(profile.joined);
    byId('whoami').textContent = `Signed in as ${profile.email}.`;
    byId('profile-facts').hidden = false;
    say(status, '');
  } catch (err) {
    say(status, `Could not load your profile: ${messageOf(err)}`, 'error');
  }
}
