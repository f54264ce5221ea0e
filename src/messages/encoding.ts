// How a text travels as SMS: GSM-7 or UCS-2, and how many segments it takes. Delegated to
// sms-segments-calculator, which knows the GSM extension table and surrogate pairs.
import { SegmentedMessage } from 'sms-segments-calculator';

export type Encoding = 'GSM-7' | 'UCS-2';

export interface EncodingInfo {
  encoding: Encoding;
  segments: number;
  nonGsmCharacters: string[];
}

export function analyseText(text: string): EncodingInfo {
  if (text.length === 0) return { encoding: 'GSM-7', segments: 1, nonGsmCharacters: [] };
  const seg = new SegmentedMessage(text);
  return {
    encoding: seg.encodingName === 'UCS-2' ? 'UCS-2' : 'GSM-7',
    segments: seg.segmentsCount,
    nonGsmCharacters: seg.encodingName === 'UCS-2' ? seg.getNonGsmCharacters() : [],
  };
}
