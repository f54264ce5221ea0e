// A fake Twilio for tests, on 127.0.0.1: the Messages and Calls resources as documented
// (form-encoded POST, HTTP Basic, 201 with the resource's JSON, errors as {code, message,
// more_info, status}), and the callbacks Twilio makes — message and call status callbacks and
// inbound messages — signed the way Twilio signs them (X-Twilio-Signature), or wrongly when a
// test asks.
import { ProviderFakeServer, type FakeAnswer } from '../provider-fake-server.ts';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { twilioSignature } from './twilio-connector.ts';

export interface TwilioFakeMessage {
  sid: string;
  accountSid: string;
  params: URLSearchParams;
  authorization: string | undefined;
}

export class TwilioFake extends ProviderFakeServer {
  readonly accountSid = `AC${randomBytes(16).toString('hex')}`;
  readonly authToken = randomBytes(16).toString('hex');
  messages: TwilioFakeMessage[] = [];
  calls: TwilioFakeMessage[] = [];
  /** Recipients the fake refuses, with the Twilio error code and HTTP status it answers. */
  refuse = new Map<string, { code: number; status: number; message: string }>();

  protected async handle(req: IncomingMessage, raw: string): Promise<FakeAnswer> {
    if (/^\/2010-04-01\/Accounts\/[^/]+\/Calls\.json$/.test(req.url ?? '')) return this.handleCall(req, raw);
    const m = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(req.url ?? '');
    if (!m || req.method !== 'POST') return { status: 404, body: { code: 20404, message: 'The requested resource was not found', more_info: 'https://www.twilio.com/docs/errors/20404', status: 404 } };
    const expected = `Basic ${Buffer.from(`${this.accountSid}:${this.authToken}`).toString('base64')}`;
    if (req.headers.authorization !== expected || m[1] !== this.accountSid) {
      return { status: 401, body: { code: 20003, message: 'Authenticate', more_info: 'https://www.twilio.com/docs/errors/20003', status: 401 } };
    }
    if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) return { status: 400, body: { code: 20001, message: 'Unsupported content type', status: 400 } };
    const params = new URLSearchParams(raw);
    const to = params.get('To') ?? '';
    if (!to) return { status: 400, body: { code: 21604, message: "A 'To' phone number is required.", more_info: 'https://www.twilio.com/docs/errors/21604', status: 400 } };
    if (!params.get('Body') && !params.get('MediaUrl')) return { status: 400, body: { code: 21602, message: 'Message body is required.', status: 400 } };
    const refusal = this.refuse.get(to);
    if (refusal) {
      return {
        status: refusal.status,
        body: { code: refusal.code, message: refusal.message, more_info: `https://www.twilio.com/docs/errors/${refusal.code}`, status: refusal.status },
        headers: refusal.status === 429 ? { 'retry-after': '2' } : {},
      };
    }
    const sid = `SM${randomBytes(16).toString('hex')}`;
    this.messages.push({ sid, accountSid: m[1]!, params, authorization: req.headers.authorization });
    const now = new Date().toUTCString();
    return {
      status: 201,
      body: {
        account_sid: this.accountSid,
        api_version: '2010-04-01',
        body: params.get('Body') ?? '',
        date_created: now,
        date_sent: null,
        date_updated: now,
        direction: 'outbound-api',
        error_code: null,
        error_message: null,
        from: params.get('From'),
        messaging_service_sid: params.get('MessagingServiceSid'),
        num_media: String(params.getAll('MediaUrl').length),
        num_segments: '1',
        price: null,
        price_unit: 'USD',
        sid,
        status: 'queued',
        to,
        uri: `/2010-04-01/Accounts/${this.accountSid}/Messages/${sid}.json`,
      },
    };
  }

  private refusal(to: string): FakeAnswer | null {
    const refusal = this.refuse.get(to);
    if (!refusal) return null;
    return {
      status: refusal.status,
      body: { code: refusal.code, message: refusal.message, more_info: `https://www.twilio.com/docs/errors/${refusal.code}`, status: refusal.status },
      headers: refusal.status === 429 ? { 'retry-after': '2' } : {},
    };
  }

  /** POST /Calls.json: To, From, and Twiml or Url are required; answers the queued call. */
  private handleCall(req: IncomingMessage, raw: string): FakeAnswer {
    const accountSid = /Accounts\/([^/]+)\//.exec(req.url ?? '')![1];
    const expected = `Basic ${Buffer.from(`${this.accountSid}:${this.authToken}`).toString('base64')}`;
    if (req.method !== 'POST') return { status: 405, body: { code: 20004, message: 'Method not allowed', status: 405 } };
    if (req.headers.authorization !== expected || accountSid !== this.accountSid) return { status: 401, body: { code: 20003, message: 'Authenticate', more_info: 'https://www.twilio.com/docs/errors/20003', status: 401 } };
    const params = new URLSearchParams(raw);
    const to = params.get('To') ?? '';
    if (!to) return { status: 400, body: { code: 21201, message: "No 'To' number is specified", status: 400 } };
    if (!params.get('From')) return { status: 400, body: { code: 21213, message: "No 'From' number is specified", status: 400 } };
    const twiml = params.get('Twiml');
    if (!twiml && !params.get('Url') && !params.get('ApplicationSid')) return { status: 400, body: { code: 21205, message: 'Url parameter is required.', status: 400 } };
    if (twiml && !/<Response>[\s\S]*<\/Response>/.test(twiml)) return { status: 400, body: { code: 12100, message: 'Document parse failure', status: 400 } };
    const md = params.get('MachineDetection');
    if (md && md !== 'Enable' && md !== 'DetectMessageEnd') return { status: 400, body: { code: 21626, message: 'Invalid MachineDetection value', status: 400 } };
    const refused = this.refusal(to);
    if (refused) return refused;
    const sid = `CA${randomBytes(16).toString('hex')}`;
    this.calls.push({ sid, accountSid: accountSid!, params, authorization: req.headers.authorization });
    const now = new Date().toUTCString();
    return {
      status: 201,
      body: {
        account_sid: this.accountSid,
        annotation: null,
        answered_by: null,
        api_version: '2010-04-01',
        caller_name: null,
        date_created: now,
        date_updated: now,
        direction: 'outbound-api',
        duration: null,
        end_time: null,
        forwarded_from: null,
        from: params.get('From'),
        from_formatted: params.get('From'),
        group_sid: null,
        parent_call_sid: null,
        phone_number_sid: `PN${randomBytes(16).toString('hex')}`,
        price: null,
        price_unit: 'USD',
        sid,
        start_time: null,
        status: 'queued',
        subresource_uris: { notifications: `/2010-04-01/Accounts/${this.accountSid}/Calls/${sid}/Notifications.json`, recordings: `/2010-04-01/Accounts/${this.accountSid}/Calls/${sid}/Recordings.json` },
        to,
        to_formatted: to,
        trunk_sid: null,
        uri: `/2010-04-01/Accounts/${this.accountSid}/Calls/${sid}.json`,
        queue_time: '0',
      },
    };
  }

  private sequence = new Map<string, number>();

  /**
   * A call status callback, as Twilio sends it to the StatusCallback of a call it accepted:
   * the call's parameters, CallStatus, and for a finished call CallDuration, AnsweredBy (with
   * machine detection) and SipResponseCode.
   */
  async callStatus(sid: string, status: string, opts: { answeredBy?: string; duration?: number; sipResponseCode?: string; errorCode?: string; signWith?: string } = {}): Promise<Response> {
    const call = this.calls.find((x) => x.sid === sid);
    if (!call) throw new Error(`no call ${sid}`);
    const callback = call.params.get('StatusCallback');
    if (!callback) throw new Error(`call ${sid} had no StatusCallback`);
    const seq = this.sequence.get(sid) ?? 0;
    this.sequence.set(sid, seq + 1);
    const params: Record<string, string> = {
      Called: call.params.get('To') ?? '',
      ToState: 'DC',
      CallerCountry: 'US',
      Direction: 'outbound-api',
      Timestamp: new Date().toUTCString(),
      CallbackSource: 'call-progress-events',
      SequenceNumber: String(seq),
      CallSid: sid,
      To: call.params.get('To') ?? '',
      From: call.params.get('From') ?? '',
      Caller: call.params.get('From') ?? '',
      CallStatus: status,
      AccountSid: this.accountSid,
      ApiVersion: '2010-04-01',
    };
    if (status === 'completed' || status === 'busy' || status === 'no-answer' || status === 'failed' || status === 'canceled') {
      params.CallDuration = String(opts.duration ?? 0);
      params.Duration = String(Math.ceil((opts.duration ?? 0) / 60));
    }
    if (opts.answeredBy && call.params.get('MachineDetection')) params.AnsweredBy = opts.answeredBy;
    if (opts.sipResponseCode) params.SipResponseCode = opts.sipResponseCode;
    if (opts.errorCode) params.ErrorCode = opts.errorCode;
    return this.post(callback, params, { signWith: opts.signWith });
  }

  /** POSTs a form to one of the platform's hooks, signed with the auth token (or not). */
  async post(url: string, params: Record<string, string>, opts: { signWith?: string } = {}): Promise<Response> {
    const form = new URLSearchParams(params);
    const signature = twilioSignature(opts.signWith ?? this.authToken, url, params);
    return fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature, 'i-twilio-idempotency-token': randomBytes(8).toString('hex') }, body: form.toString() });
  }

  /** A status callback for a message the fake accepted, to the StatusCallback it was given. */
  async status(sid: string, status: string, opts: { errorCode?: string; signWith?: string } = {}): Promise<Response> {
    const msg = this.messages.find((x) => x.sid === sid);
    if (!msg) throw new Error(`no message ${sid}`);
    const callback = msg.params.get('StatusCallback');
    if (!callback) throw new Error(`message ${sid} had no StatusCallback`);
    const params: Record<string, string> = {
      SmsSid: sid,
      SmsStatus: status,
      MessageStatus: status,
      To: msg.params.get('To') ?? '',
      MessageSid: sid,
      AccountSid: this.accountSid,
      From: msg.params.get('From') ?? '',
      ApiVersion: '2010-04-01',
    };
    if (opts.errorCode) params.ErrorCode = opts.errorCode;
    return this.post(callback, params, { signWith: opts.signWith });
  }

  /** An inbound message, as Twilio posts it to the number's messaging webhook. */
  async inbound(url: string, m: { from: string; to: string; body: string; mediaUrls?: string[] }, opts: { signWith?: string } = {}): Promise<Response> {
    const sid = `SM${randomBytes(16).toString('hex')}`;
    const params: Record<string, string> = {
      ToCountry: 'US',
      SmsMessageSid: sid,
      NumMedia: String(m.mediaUrls?.length ?? 0),
      SmsSid: sid,
      SmsStatus: 'received',
      Body: m.body,
      To: m.to,
      NumSegments: '1',
      MessageSid: sid,
      AccountSid: this.accountSid,
      From: m.from,
      ApiVersion: '2010-04-01',
    };
    for (const [i, u] of (m.mediaUrls ?? []).entries()) {
      params[`MediaUrl${i}`] = u;
      params[`MediaContentType${i}`] = 'image/jpeg';
    }
    return this.post(url, params, opts);
  }
}
