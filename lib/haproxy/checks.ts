/**
 * Health checks of a service's servers: the check a backend sends (http, DICOM C-ECHO, tcp on every port)
 * and the `check` options of its servers. Pure.
 */
import type { ResolvedService } from "../config/model";
import { dicomTcpCheckDirectives } from "./dicom-check";

/** The check directives of a backend of `s`. */
export function checkDirectives(s: ResolvedService): string[] {
  const hc = s.healthCheck;
  switch (hc.type) {
    case "http": {
      const host = hc.host ?? s.vip.address;
      return [
        "option httpchk",
        `http-check send meth ${hc.method} uri ${hc.path} ver HTTP/1.1 hdr Host ${host} hdr User-Agent imaging-lb-check`,
        `http-check expect status ${hc.expectStatus}`,
      ];
    }
    case "dicom-echo":
      return dicomTcpCheckDirectives({ calledAeTitle: hc.calledAeTitle!, callingAeTitle: hc.callingAeTitle, variant: hc.variant, ports: hc.ports });
    case "tcp":
      // Every port the servers serve on must answer: one connect per port, in order.
      return hc.ports.length > 0 ? ["option tcp-check", ...hc.ports.map((p) => `tcp-check connect port ${p}`)] : [];
    case "tls":
    case "none":
      return [];
    default: {
      const never: never = hc.type;
      throw new Error(`unknown check type ${String(never)}`);
    }
  }
}

/** Health-check options of the servers of `s`, checked on `checkPort`. */
export function checkOptions(s: ResolvedService, checkPort: number | undefined): string[] {
  const hc = s.healthCheck;
  if (hc.type === "none") return [];
  const options = ["check", `inter ${hc.interval}`, `fall ${hc.fall}`, `rise ${hc.rise}`];
  if (checkPort !== undefined) options.push(`port ${checkPort}`);
  if (hc.type === "tls" || (hc.type === "http" && hc.ssl)) {
    // Checks of a re-encrypting service verify like its traffic (and send its SNI); a TLS check of plain
    // traffic only handshakes.
    options.push(...(s.tls.mode === "reencrypt" ? ["check-ssl", ...(s.tls.serverName ? [`check-sni ${s.tls.serverName}`] : [])] : ["check-ssl", "verify none"]));
  }
  if (s.proxyProtocol) options.push("check-send-proxy");
  return options;
}
