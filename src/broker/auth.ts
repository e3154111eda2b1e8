/**
 * Client authentication: none, a shared token, or a list of users with passwords, as nats-server's
 * `authorization` block. Comparisons are constant-time so a wrong password's timing says nothing.
 */
import { timingSafeEqual } from "node:crypto";
import type { AuthOptions, UserPermissions } from "./options.js";

export interface Credentials {
  readonly user?: unknown;
  readonly pass?: unknown;
  readonly auth_token?: unknown;
}

export type AuthResult =
  | {
      readonly ok: true;
      readonly user: string | undefined;
      readonly permissions: UserPermissions | undefined;
    }
  | { readonly ok: false };

const DENIED: AuthResult = { ok: false };

function secretEquals(given: unknown, expected: string): boolean {
  if (typeof given !== "string") return false;
  const a = Buffer.from(given, "utf8");
  const b = Buffer.from(expected, "utf8");
  // Compare against itself on length mismatch so both paths take the same time.
  if (a.length !== b.length) {
    timingSafeEqual(b, b);
    return false;
  }
  return timingSafeEqual(a, b);
}

export class Authenticator {
  private readonly users: ReadonlyMap<string, { password: string; permissions: UserPermissions | undefined }>;

  constructor(private readonly options: AuthOptions | undefined) {
    const users = new Map<string, { password: string; permissions: UserPermissions | undefined }>();
    for (const u of options?.users ?? [])
      users.set(u.user, { password: u.password, permissions: u.permissions });
    this.users = users;
  }

  /** True when clients must CONNECT with credentials before anything else. */
  get required(): boolean {
    return this.options?.token !== undefined || this.users.size > 0;
  }

  /** Seconds a client has to authenticate (nats-server's AUTH_TIMEOUT default: 2s). */
  get timeoutMs(): number {
    return Math.round((this.options?.timeoutSec ?? 2) * 1000);
  }

  authenticate(creds: Credentials): AuthResult {
    if (!this.required) return { ok: true, user: undefined, permissions: undefined };
    const token = this.options?.token;
    if (token !== undefined) {
      if (!secretEquals(creds.auth_token, token)) return DENIED;
      return { ok: true, user: undefined, permissions: this.options?.tokenPermissions };
    }
    if (typeof creds.user !== "string") return DENIED;
    const entry = this.users.get(creds.user);
    if (entry === undefined) {
      secretEquals(creds.pass, "");
      return DENIED;
    }
    if (!secretEquals(creds.pass, entry.password)) return DENIED;
    return { ok: true, user: creds.user, permissions: entry.permissions };
  }
}
