import { INamingRules } from './types';

/**
 * Client-side checks of the Publish dialog. They mirror
 * `af_lab/publish/naming.py` and `plan.py` so the user sees a problem as
 * they type; the server checks everything again (`publish/validate`).
 */

/**
 * The generic Rucio policy, used until the server has sent its rules.
 */
export const DEFAULT_RULES: INamingRules = {
  pattern: '^[/A-Za-z0-9][/A-Za-z0-9\\.\\-_]*$',
  max_length: 250,
  scope_pattern: '^[a-zA-Z_\\-.0-9]+$',
  scope_max_length: 25
};

/**
 * The largest lifetime the server accepts, in days.
 */
export const MAX_LIFETIME_DAYS = 36500;

const compiled = new Map<string, RegExp | null>();

/**
 * A Python regular expression as a JavaScript one; null when it uses syntax
 * JavaScript lacks (the server's check then stands alone).
 */
export function toRegExp(pattern: string): RegExp | null {
  if (!compiled.has(pattern)) {
    let re: RegExp | null = null;
    try {
      re = new RegExp(pattern);
    } catch {
      re = null;
    }
    compiled.set(pattern, re);
  }
  return compiled.get(pattern) ?? null;
}

function allowedChars(rules: INamingRules): string {
  return (
    "letters, digits, '.', '-', '_'" +
    (rules.pattern.includes('/') ? " and '/'" : '')
  );
}

/**
 * Why `name` is not a valid DID name, or null when it is.
 */
export function checkName(
  name: string,
  rules: INamingRules = DEFAULT_RULES
): string | null {
  if (!name) {
    return 'A DID name is required.';
  }
  if (name.length > rules.max_length) {
    return `${name.length} characters long; Rucio allows at most ${rules.max_length}.`;
  }
  const re = toRegExp(rules.pattern);
  if (re && !re.test(name)) {
    return `Not a valid Rucio name: it must start with a letter or digit and contain only ${allowedChars(rules)}.`;
  }
  return null;
}

/**
 * Why `scope` is not a valid scope name, or null when it is.
 */
export function checkScope(
  scope: string,
  rules: INamingRules = DEFAULT_RULES
): string | null {
  if (!scope) {
    return 'A scope is required.';
  }
  if (scope.length > rules.scope_max_length) {
    return `Scope ${scope} is longer than ${rules.scope_max_length} characters.`;
  }
  const re = toRegExp(rules.scope_pattern);
  if (re && !re.test(scope)) {
    return `${scope} is not a valid Rucio scope name.`;
  }
  return null;
}

/**
 * Split `scope:name` (or a bare `name`, in `defaultScope`).
 */
export function splitDid(
  text: string,
  defaultScope: string
): { scope: string; name: string } {
  const trimmed = text.trim();
  const colon = trimmed.lastIndexOf(':');
  if (colon < 0) {
    return { scope: defaultScope, name: trimmed };
  }
  return { scope: trimmed.slice(0, colon), name: trimmed.slice(colon + 1) };
}

/**
 * Why a dataset/container field (`name` or `scope:name`) is not valid, or
 * null when it is.
 */
export function checkDid(
  text: string,
  defaultScope: string,
  rules: INamingRules = DEFAULT_RULES
): string | null {
  const { scope, name } = splitDid(text, defaultScope);
  if (text.includes(':')) {
    const scopeProblem = checkScope(scope, rules);
    if (scopeProblem) {
      return scopeProblem;
    }
  }
  return checkName(name, rules);
}

/**
 * The closest valid name (as the server's `naming.sanitize`): path
 * separators become dots or stay, other characters become underscores.
 */
export function sanitizeName(
  name: string,
  rules: INamingRules = DEFAULT_RULES
): string {
  const slash = rules.pattern.includes('/');
  let out = slash ? name : name.replace(/\//g, '.');
  out = out.replace(/[^A-Za-z0-9._\-/]/g, '_');
  out = out.replace(/^[^A-Za-z0-9]+/, '') || 'output';
  return out.slice(0, rules.max_length);
}

/**
 * The last path component: the default DID name of a file, the default
 * dataset name of a folder.
 */
export function baseName(path: string): string {
  const parts = path.split('/').filter(p => p.length > 0);
  return parts.length ? parts[parts.length - 1] : '';
}

/**
 * Why the lifetime is not acceptable, or null. `text` is the field's
 * content (days); `none` is the "no expiry" choice.
 */
export function checkLifetime(
  text: string,
  none: boolean,
  allowNone: boolean
): string | null {
  if (none) {
    return allowNone
      ? null
      : 'This facility requires a lifetime: replicas without an expiry are not allowed.';
  }
  if (text.trim() === '') {
    return 'Give a lifetime in days.';
  }
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) {
    return 'The lifetime must be a positive number of days.';
  }
  if (value > MAX_LIFETIME_DAYS) {
    return `The lifetime may be at most ${MAX_LIFETIME_DAYS} days.`;
  }
  return null;
}
