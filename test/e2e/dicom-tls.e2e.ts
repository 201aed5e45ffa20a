/**
 * Issue 11 "Add": DICOM over TLS (port 2762) terminated on the load balancer in tcp mode, on the real network.
 * The product's rendered haproxy.cfg (examples/agfa-ei-two-arm.yaml plus a `dicom-tls` service on the core
 * VIP with the legacy TLS profile) in front of real Orthancs on their plain DICOM port; the modality is DCMTK
 * storescu with TLS (`+tla -ic`: anonymous client, the LB's throwaway certificate not verified).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { requireTool } from "../helpers/tools";
import { generateDicomInstances, listNamespaces, RUN_PREFIX, startTestbed, sweepStaleNamespaces, type Testbed } from "./harness";

describe("DICOM over TLS terminated on the VIP (port 2762)", { timeout: 120_000 }, () => {
  let bed: Testbed;

  before(async () => {
    sweepStaleNamespaces();
    bed = await startTestbed({
      example: "agfa-ei-two-arm",
      patch: {
        services: {
          core: { enabled: false },
          hl7: { enabled: false },
          xero: { enabled: false },
          dicom: { healthCheck: { interval: "1s" }, timeouts: { check: "1s" } },
          "dicom-tls": {
            vip: "core",
            frontendPorts: [2762],
            backendPort: 104,
            mode: "tcp",
            tls: { mode: "terminate", certificate: "web", profile: "legacy" },
            healthCheck: { type: "dicom-echo", calledAeTitle: "EI_CORE", interval: "1s" },
            timeouts: { check: "1s" },
          },
        },
      },
      waitUp: ["be_dicom-tls"],
    });
  });

  after(() => {
    bed?.destroy();
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), [], "every namespace of this run is gone");
  });

  it("a TLS C-STORE through VIP:2762 is stored on a PACS that speaks plain DICOM; plain DICOM on 2762 is refused", async () => {
    const storescu = requireTool("storescu", "dcmtk");
    const topo = bed.lb.topology;
    const files = generateDicomInstances({ dir: join(topo.workDir, "dicom-tls"), count: 2, sizeBytes: 16 * 1024 });
    const vip = bed.vip("core");
    const tls = await topo.exec("client1", storescu, ["+tla", "-ic", "-aet", "MODALITY1", "-aec", "EI_CORE", vip, "2762", ...files.map((f) => f.path)], { timeoutMs: 30_000 });
    assert.equal(tls.code, 0, tls.stdout + tls.stderr);
    const stored = (await Promise.all((bed.orthancs.get(104) ?? []).map((o) => o.storedInstances()))).flat();
    assert.deepEqual(stored.map((s) => s.sopInstanceUid).sort(), files.map((f) => f.sopInstanceUid).sort());
    const plain = await topo.exec("client1", storescu, ["-to", "5", "-ta", "5", "-aet", "MODALITY1", "-aec", "EI_CORE", vip, "2762", files[0].path], { timeoutMs: 20_000 });
    assert.notEqual(plain.code, 0, "no plain DICOM on the TLS port");
  });

  it("the legacy profile accepts a TLS 1.0 modality on 2762", async () => {
    const openssl = requireTool("openssl", "openssl");
    const hello = await bed.lb.topology.exec("client1", openssl, ["s_client", "-connect", `${bed.vip("core")}:2762`, "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"], { input: "", timeoutMs: 10_000 });
    assert.match(hello.stdout, /Protocol\s*: TLSv1\b/, hello.stdout + hello.stderr);
  });
});
