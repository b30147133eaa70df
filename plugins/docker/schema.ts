// Checks for the request bodies dockerd sends: each reader names the method
// and field that is wrong, so a bad request is answered with a clear error.
import { StrandError } from '../../common/errors.js';

export type Json = Record<string, unknown>;

export class Body {
  constructor(
    readonly method: string,
    readonly value: Json,
  ) {}

  static of(method: string, body: unknown): Body {
    if (body === undefined || body === null) return new Body(method, {});
    if (typeof body !== 'object' || Array.isArray(body)) throw bad(method, 'the body must be a JSON object');
    return new Body(method, body as Json);
  }

  /** A string field; '' when absent or null (Docker sends "" for unknown values). */
  str(key: string, options: { required?: boolean } = {}): string {
    const v = this.value[key];
    if (v === undefined || v === null) {
      if (options.required) throw bad(this.method, `${key} is missing`);
      return '';
    }
    if (typeof v !== 'string') throw bad(this.method, `${key} must be a string`);
    if (options.required && v === '') throw bad(this.method, `${key} is empty`);
    return v;
  }

  /** A 64-hex id (NetworkID, EndpointID). */
  id(key: string): string {
    const v = this.str(key, { required: true });
    if (!/^[0-9a-f]{64}$/.test(v)) throw bad(this.method, `${key} "${v}" is not a 64-hex-digit id`);
    return v;
  }

  bool(key: string): boolean {
    const v = this.value[key];
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean') throw bad(this.method, `${key} must be true or false`);
    return v;
  }

  /** An object field; {} when absent or null. */
  obj(key: string): Body {
    const v = this.value[key];
    if (v === undefined || v === null) return new Body(this.method, {});
    if (typeof v !== 'object' || Array.isArray(v)) throw bad(this.method, `${key} must be an object`);
    return new Body(`${this.method} ${key}`, v as Json);
  }

  /** An array of objects; [] when absent or null. */
  list(key: string): Body[] {
    const v = this.value[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw bad(this.method, `${key} must be an array`);
    return v.map((item, i) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) throw bad(this.method, `${key}[${i}] must be an object`);
      return new Body(`${this.method} ${key}[${i}]`, item as Json);
    });
  }

  /** A whole-number field; 0 when absent. */
  int(key: string): number {
    const v = this.value[key];
    if (v === undefined || v === null) return 0;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(this.method, `${key} must be a whole number`);
    return v;
  }

  /** A string → string map; non-string values are refused, naming the key. */
  strings(key: string): Record<string, string> {
    const o = this.obj(key).value;
    // No prototype: a key such as __proto__ stays a key (for the driver to judge) instead of vanishing.
    const out = Object.create(null) as Record<string, string>;
    for (const [k, v] of Object.entries(o)) {
      if (typeof v !== 'string') throw bad(this.method, `${key}.${k} must be a string`);
      out[k] = v;
    }
    return out;
  }
}

function bad(method: string, what: string): StrandError {
  return new StrandError('invalid', `strand: bad ${method} request: ${what}`);
}
