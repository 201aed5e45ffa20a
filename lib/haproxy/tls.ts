/**
 * TLS in haproxy.cfg: the default (Mozilla "intermediate") and `legacy` profiles, and which services
 * terminate TLS. Pure.
 */
import type { ResolvedService } from "../config/model";

/** Mozilla "intermediate" TLS profile: TLS 1.2+ with forward-secret AEAD ciphers only. */
export const TLS_PROFILE = {
  ciphers:
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
  ciphersuites: "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
  options: "ssl-min-ver TLSv1.2 no-tls-tickets",
} as const;

/**
 * The `legacy` per-service TLS profile, for modalities that cannot do better (DICOM TLS on 2762 from old
 * equipment): TLS 1.0 and up, adding CBC and non-forward-secret AES ciphers; OpenSSL 3 needs security level
 * 0 for TLS 1.0/1.1. Give those modalities a VIP (service) of their own, so the others keep `intermediate`.
 */
export const LEGACY_TLS_PROFILE = {
  minVersion: "TLSv1.0",
  ciphers: `${TLS_PROFILE.ciphers}:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA:AES256-SHA:@SECLEVEL=0`,
} as const;

/** True when HAProxy terminates the service's TLS (terminate, or reencrypt towards the servers). */
export const terminates = (s: ResolvedService) => s.tls.mode === "terminate" || s.tls.mode === "reencrypt";
