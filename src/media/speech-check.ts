// The acceptance-time side of text to speech: a voice or rvm message that has only text, routed
// to connectors that need an audio file (CONNECTOR_NEEDS_AUDIO), is refused with 422 FILTERED
// (`details.reason: "text_to_speech_unavailable"`) when the audio could not be rendered here —
// no program installed, or no public URL for the provider to fetch it from. Nothing is written.
import { needsAudio } from '../connectors/connector-channels.ts';
import { AppError } from '../errors.ts';
import type { SpeechCheck } from '../messages/message-service.ts';
import type { Router } from '../routing/router.ts';
import type { TextToSpeech } from './text-to-speech.ts';

export function speechCheck(router: Router, speech: TextToSpeech): SpeechCheck {
  return (connectorIds, channel) => {
    const needing = connectorIds.filter((id) => needsAudio(router.typeOf(id), channel));
    if (needing.length === 0) return null;
    const problem = speech.unavailable();
    if (!problem) return null;
    return new AppError(
      'FILTERED',
      `This ${channel} message has only text, and its route needs an audio file; it cannot be rendered here: ${problem}. Give the audio in media_urls (upload it with POST /v1/media), or install text to speech.`,
      { reason: 'text_to_speech_unavailable', channel, connector_ids: needing, problem },
    );
  };
}
