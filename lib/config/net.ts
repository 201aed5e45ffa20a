/** IPv4 arithmetic for validation: pure, no dependencies. */

/** The address as an unsigned 32-bit number. Expects a valid dotted quad. */
export function ipToNumber(ip: string): number {
  return ip.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

export function numberToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}

export interface Cidr {
  readonly base: number;
  readonly prefix: number;
  readonly size: number;
}

export function parseCidr(cidr: string): Cidr {
  const [ip, prefixText] = cidr.split("/");
  const prefix = Number(prefixText);
  const size = 2 ** (32 - prefix);
  const base = Math.floor(ipToNumber(ip) / size) * size;
  return { base, prefix, size };
}

/** True when the CIDR's address is its network address (10.0.1.0/24, not 10.0.1.5/24). */
export function isNetworkAddress(cidr: string): boolean {
  return parseCidr(cidr).base === ipToNumber(cidr.split("/")[0]);
}

export function cidrContains(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  const n = ipToNumber(ip);
  return n >= c.base && n < c.base + c.size;
}

export function cidrsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  return x.base < y.base + y.size && y.base < x.base + x.size;
}

/** `outer` holds all of `inner`. */
export function cidrWithin(inner: string, outer: string): boolean {
  const i = parseCidr(inner);
  const o = parseCidr(outer);
  return i.base >= o.base && i.base + i.size <= o.base + o.size;
}

/** AWS reserves the first four addresses and the last one of every subnet. */
export function isAwsReserved(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  const n = ipToNumber(ip);
  return n - c.base < 4 || n === c.base + c.size - 1;
}

/** The VPC router of a subnet: base + 1. */
export function subnetRouter(cidr: string): string {
  return numberToIp(parseCidr(cidr).base + 1);
}

/** Milliseconds of an HAProxy duration such as 500ms, 30s, 10m, 1h, 1d. */
export function durationMs(duration: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(duration);
  if (!m) throw new Error(`not a duration: ${duration}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "ms" | "s" | "m" | "h" | "d"];
  return Number(m[1]) * unit;
}
