// Error classes after acceptance (CONTRACT §5, docs/errors.md) and what a person should do, in
// plain words.
export const ERROR_ACTIONS: Record<string, { title: string; action: string }> = {
  AUTH_FAILED: { title: 'The provider refused our credentials', action: 'Refresh the token: fix the connector’s credentials in Settings → Connectors. Messages fail over to another route meanwhile.' },
  INVALID_NUMBER: { title: 'The number is not valid or not in service', action: 'Normalise the number (full international format, +country code) or remove it from your records; it is suppressed.' },
  RATE_LIMITED: { title: 'The carrier throttled us', action: 'Back off: Switchboard retries with backoff by itself. If it persists, lower the send rate.' },
  UNREACHABLE: { title: 'The handset or carrier could not be reached', action: 'Back off and try later, or use another channel.' },
  OPTED_OUT: { title: 'The recipient opted out', action: 'Honour the suppression: do not retry or message this number again unless they opt back in.' },
  FILTERED: { title: 'The carrier or a rule blocked the content', action: 'Review the content: the wording, links, sender type and registration. It is in the review queue.' },
  UNKNOWN_ERROR: { title: 'An unspecified failure', action: 'Escalate: read the provider’s raw response below; if it repeats, contact the provider.' },
};

export const ERROR_CLASSES = Object.keys(ERROR_ACTIONS);
