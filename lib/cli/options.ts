/** Parsers for commander options: each rejects a bad value with a message that says what was expected. */
import { InvalidArgumentError } from 'commander';

export function intOption(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `expected an integer ≥ ${min}` : `expected an integer in [${min}, ${max}]`);
    }
    return n;
  };
}

/** A finite number in [min, max]; `openMin` excludes min itself. */
export function numberOption(min: number, max: number, openMin = false): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max || (openMin && n === min)) {
      throw new InvalidArgumentError(`expected a number in ${openMin ? '(' : '['}${min}, ${max}]`);
    }
    return n;
  };
}

export function listOf<T extends string>(allowed: readonly T[]): (value: string) => T[] {
  return (value) => {
    const items = value.split(',').map((s) => s.trim());
    const wrong = items.filter((s) => !allowed.includes(s as T));
    if (wrong.length > 0) throw new InvalidArgumentError(`unknown ${wrong.join(', ')}; expected some of ${allowed.join(', ')}`);
    return items as T[];
  };
}
