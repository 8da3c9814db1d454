/**
 * Numbers for people: sizes, rates, durations and counts.
 *
 * Sizes use binary units (KiB, MiB, GiB), like the server's own messages, so
 * a number in a badge and a number in an error message always agree.
 */

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/**
 * `0` → `0 B`, `1536` → `1.5 KiB`, `848426773773` → `790 GiB`; anything that
 * is not a size → `–`.
 */
export function formatBytes(bytes: number | null | undefined): string {
  if (typeof bytes !== 'number' || !Number.isFinite(bytes) || bytes < 0) {
    return '–';
  }
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) {
    return `${Math.round(value)} B`;
  }
  // Three significant digits at most: 1.5 KiB, 15.2 MiB, 152 GiB.
  const digits = value < 10 ? 1 : value < 100 ? 1 : 0;
  const text = value.toFixed(digits).replace(/\.0$/, '');
  return `${text} ${BYTE_UNITS[unit]}`;
}

/**
 * The exact byte count with thousands separators, for tooltips.
 */
export function formatExactBytes(bytes: number | null | undefined): string {
  if (typeof bytes !== 'number' || !Number.isFinite(bytes)) {
    return 'size unknown';
  }
  return `${formatCount(bytes)} bytes`;
}

/**
 * `12345678` → `11.8 MiB/s`; 0 or unknown → `–`.
 */
export function formatRate(bytesPerSecond: number | null | undefined): string {
  if (
    typeof bytesPerSecond !== 'number' ||
    !Number.isFinite(bytesPerSecond) ||
    bytesPerSecond <= 0
  ) {
    return '–';
  }
  return `${formatBytes(bytesPerSecond)}/s`;
}

/**
 * A duration for "time left": `4` → `4 s`, `75` → `1 min 15 s`,
 * `7300` → `2 h 2 min`; unknown → `–`.
 */
export function formatDuration(seconds: number | null | undefined): string {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
    return '–';
  }
  const s = Math.round(seconds);
  if (s < 60) {
    return `${s} s`;
  }
  const minutes = Math.floor(s / 60);
  if (minutes < 60) {
    const rest = s % 60;
    return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
  }
  const hours = Math.floor(minutes / 60);
  if (hours < 48) {
    const rest = minutes % 60;
    return rest ? `${hours} h ${rest} min` : `${hours} h`;
  }
  return `${Math.round(hours / 24)} days`;
}

/**
 * `12345` → `12,345` (the user's locale decides the separator).
 */
export function formatCount(n: number | null | undefined): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) {
    return '–';
  }
  return Math.round(n).toLocaleString();
}

/**
 * `plural(1, 'file')` → `1 file`, `plural(2000, 'file')` → `2,000 files`.
 */
export function plural(n: number, one: string, many?: string): string {
  return `${formatCount(n)} ${n === 1 ? one : (many ?? `${one}s`)}`;
}

/**
 * `part / whole` as a whole percentage in 0..100 (0 when whole is 0); a
 * percentage only reaches 100 when `part >= whole`.
 */
export function percent(part: number, whole: number): number {
  if (!(whole > 0) || !(part > 0)) {
    return 0;
  }
  if (part >= whole) {
    return 100;
  }
  return Math.min(99, Math.floor((part / whole) * 100));
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

function toDate(value: number | string | null | undefined): Date | null {
  const date =
    typeof value === 'number'
      ? new Date(value * 1000)
      : typeof value === 'string'
        ? new Date(value)
        : null;
  return date && !Number.isNaN(date.getTime()) ? date : null;
}

/**
 * A date as `2027-01-01` (local; one format everywhere, never `1/1/2027`).
 * Numbers are epoch seconds; strings ISO 8601.
 */
export function formatDate(value: number | string | null | undefined): string {
  const date = toDate(value);
  if (!date) {
    return '–';
  }
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/**
 * A date and time as `2027-01-01 14:05` (local).
 */
export function formatTime(value: number | string | null | undefined): string {
  const date = toDate(value);
  if (!date) {
    return '–';
  }
  return `${formatDate(date.getTime() / 1000)} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
}
