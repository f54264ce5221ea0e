// What happened on a voice call or a ringless-voicemail drop, as the message records it.
//
//   outcome      — answered (a person), machine (a voicemail was left: after the beep for a
//                  call, straight into the box for rvm), no_answer, busy, failed.
//   duration_s   — the call's length in seconds, as the provider reports it (0 when it never
//                  connected; for rvm, the length of the dropped message when known).
//   answered_by  — who picked up, normalised: human, machine, fax, unknown. The provider's own
//                  word (Twilio's machine_end_beep…) stays in the event's raw data.
//
// Outcomes map onto statuses in one way for every connector: answered and machine are
// `delivered`; no_answer and busy are `undelivered` with class UNREACHABLE; failed is whatever
// the provider's error maps to (a receipt status and one of the seven classes).
import type { MessageRow } from '../messages/message-view.ts';

export const VOICE_OUTCOMES = ['answered', 'machine', 'no_answer', 'busy', 'failed'] as const;
export type VoiceOutcome = (typeof VOICE_OUTCOMES)[number];
export type AnsweredBy = 'human' | 'machine' | 'fax' | 'unknown';

export interface VoiceResult {
  outcome: VoiceOutcome;
  durationS?: number | null;
  answeredBy?: AnsweredBy | null;
}

export interface VoiceView {
  outcome: VoiceOutcome | null;
  duration_s: number | null;
  answered_by: AnsweredBy | null;
}

export const isVoiceChannel = (channel: string): boolean => channel === 'voice' || channel === 'rvm';

/** The columns a voice result writes on the message. */
export function voicePatch(v: VoiceResult): Pick<MessageRow, 'voice_outcome' | 'voice_duration_s' | 'voice_answered_by'> {
  return { voice_outcome: v.outcome, voice_duration_s: v.durationS ?? null, voice_answered_by: v.answeredBy ?? null };
}

/** The message's `voice` object: null for sms and mms; its fields null until the call is over. */
export function voiceView(row: MessageRow): VoiceView | null {
  if (!isVoiceChannel(row.channel) || row.direction !== 'outbound') return null;
  return {
    outcome: (row.voice_outcome ?? null) as VoiceOutcome | null,
    duration_s: row.voice_duration_s ?? null,
    answered_by: (row.voice_answered_by ?? null) as AnsweredBy | null,
  };
}

/** About 150 words a minute, as text-to-speech voices and people reading a script speak. */
export function spokenSeconds(text: string | null): number {
  const words = (text ?? '').trim().split(/\s+/).filter(Boolean).length;
  return Math.max(3, Math.ceil(words / 2.5));
}
