// Which channels each connector type can carry, known without starting a session: routing
// reads it at accept time to skip a connector that cannot carry a message (an MMS to an SMPP
// bind) and to decide an MMS fallback (routing/mms-fallback.ts). Each connector's
// capabilities.channels comes from here too, so the two never disagree.
import type { Channel } from './connector.ts';

export const CONNECTOR_CHANNELS: Record<string, readonly Channel[]> = {
  simulator: ['sms', 'mms', 'voice', 'rvm'],
  // SMPP v3.4 carries text; media would need a WAP push or a provider-specific TLV.
  smpp: ['sms'],
  twilio: ['sms', 'mms', 'voice'], // voice: Programmable Voice calls that say text or play audio
  telnyx: ['sms', 'mms'],
  vonage: ['sms', 'mms'], // MMS through the Messages API
  plivo: ['sms', 'mms'],
  dropcowboy: ['rvm'],
};

/**
 * Types that need an audio file for these channels: given only text, such a message is spoken
 * by text to speech (media/text-to-speech.ts) before the submit, and refused at acceptance when
 * no text-to-speech program is installed. Twilio is not here: it speaks text itself (<Say>).
 */
export const CONNECTOR_NEEDS_AUDIO: Record<string, readonly Channel[]> = {
  dropcowboy: ['rvm'], // audio_url: it takes no text of ours
};

export function needsAudio(type: string | undefined, channel: string): boolean {
  return type !== undefined && (CONNECTOR_NEEDS_AUDIO[type] ?? []).some((c) => c === channel);
}

/** Whether a connector type carries a channel. A type not listed here is not limited by routing. */
export function carries(type: string, channel: string): boolean {
  const channels = CONNECTOR_CHANNELS[type];
  return channels === undefined || (channels as readonly string[]).includes(channel);
}
