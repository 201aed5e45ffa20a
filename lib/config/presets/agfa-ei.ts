/**
 * `preset: agfa-ei`: the AGFA HealthCare Enterprise Imaging service catalog.
 *
 * Services, ports and protocols follow the vendor deployment guides (see the domain reference); the
 * per-service balance, persistence, check and timeout values are engineering defaults marked
 * "inferred" there, so every one of them can be overridden in the environment file's `services`.
 *
 * The preset expects two VIPs, `web` (the XERO viewer on 443/80) and `core` (the core server's client,
 * DICOM and HL7 ports), because both need ports 80 and 443.
 */
import type { z } from "zod";
import type { serviceSchema } from "../schema";

type ServiceInput = z.input<typeof serviceSchema>;

const xero: ServiceInput = {
  description: "EI Web Server (XERO viewer): HTTPS terminated on the LB, HTTP redirected",
  vip: "web",
  frontendPorts: [443],
  backendPort: 80,
  mode: "http",
  balance: "leastconn",
  tls: { mode: "terminate", certificate: "web", redirectHttpPort: 80, hsts: true },
  persistence: { type: "cookie-source", timeout: "60m" },
  healthCheck: { type: "http", path: "/", expectStatus: "200-399", interval: "5s" },
  timeouts: { httpRequest: "30s", client: "10m", server: "10m", tunnel: "1h" },
  clientAddress: "forwarded-for",
};

export const AGFA_EI_SERVICES: Readonly<Record<string, ServiceInput>> = {
  xero,
  "xero-xtend": {
    ...xero,
    enabled: false,
    description: "EI Web Server with XERO Xtend (replaces xero: enable this, disable xero): as xero, plus the Xtend paths routed to their own port (paths and port inferred)",
    routes: { xtend: { pathPrefixes: ["/xtend/"], backendPort: 8080 } },
  },
  core: {
    description: "EI Core Server client ports (non-transparent L7 proxy; one server per client across all ports)",
    vip: "core",
    frontendPorts: [80, 443, 4447, 7443, 9080, 10124],
    mode: "tcp",
    balance: "leastconn",
    persistence: { type: "source-ip", timeout: "60m" },
    healthCheck: { type: "tcp" },
    timeouts: { client: "1h", server: "1h" },
    clientAddress: "snat",
    tcpKeepalive: true,
  },
  dicom: {
    description: "EI Core Server DICOM (an association per connection; C-ECHO health check)",
    vip: "core",
    frontendPorts: [104, 110],
    mode: "tcp",
    balance: "leastconn",
    persistence: { type: "none" },
    healthCheck: { type: "dicom-echo", callingAeTitle: "LBHEALTH", interval: "10s" },
    timeouts: { client: "1h", server: "1h" },
    clientAddress: "snat",
    tcpKeepalive: true,
  },
  hl7: {
    description: "EI Core Server HL7 v2 over MLLP (long-lived sender connections; TCP check only)",
    vip: "core",
    frontendPorts: [2310, 2311],
    mode: "tcp",
    balance: "leastconn",
    persistence: { type: "source-ip", timeout: "24h" },
    healthCheck: { type: "tcp" },
    timeouts: { client: "24h", server: "24h" },
    logAtOpen: true,
    clientAddress: "snat",
    tcpKeepalive: true,
  },
};

/**
 * Preset services that stand in for another one (same VIP and ports): enabling the first means
 * disabling the second. XERO Xtend replaces the XERO viewer service.
 */
export const PRESET_REPLACES: Readonly<Record<string, string>> = { "xero-xtend": "xero" };

export const PRESETS = { "agfa-ei": AGFA_EI_SERVICES } as const;
export type PresetName = keyof typeof PRESETS;
