/**
 * Guardrails: an aspect, added to each stack, that rejects insecure resources whoever created them (our
 * constructs, an escape-hatch override, or code added later). Each finding becomes an error annotation on
 * the resource (shown by `cdktf synth`) and a construct validation, so `app.synth()` and
 * `Testing.synth(stack, true)` fail with a message naming the resource and the fix.
 */
import { gunzipSync } from "node:zlib";
import { Annotations, IAspect, Token } from "cdktf";
import { IConstruct } from "constructs";

/** Properties of {@link ImagingLbGuardrails}. */
export interface ImagingLbGuardrailsProps {
  /**
   * Ports that must never be open to the internet (0.0.0.0/0 or ::/0): stats/metrics, HAProxy peers.
   * Port 22 is rejected from every source regardless.
   * @default [8404]
   */
  readonly adminPorts?: readonly number[];
}

/** The rules, by name (each finding's message starts with it). */
export type GuardrailRule = "imdsv1" | "unencrypted-volume" | "admin-port-open-to-internet" | "ssh-ingress" | "iam-wildcard-action" | "private-key-in-user-data";

/** One violation found on a resource. */
export interface GuardrailFinding {
  /** Which rule. */
  readonly rule: GuardrailRule;
  /** What is wrong and the fix. */
  readonly message: string;
}

type Attrs = Record<string, unknown>;

const SSH_PORT = 22;
const PRIVATE_KEY_RE = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/;
const WORLD = new Set(["0.0.0.0/0", "::/0"]);

const asList = (v: unknown): unknown[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);
const asObject = (v: unknown): Attrs | undefined => {
  const first = Array.isArray(v) ? v[0] : v;
  return first !== null && typeof first === "object" ? (first as Attrs) : undefined;
};
const isTrue = (v: unknown) => v === true || v === "true";
const str = (v: unknown) => (typeof v === "string" ? v : undefined);

/** True when a (protocol, from, to) range of a security group rule includes `port`. */
function coversPort(protocol: unknown, from: unknown, to: unknown, port: number): boolean {
  const p = String(protocol ?? "").toLowerCase();
  if (p === "-1" || p === "all") return true;
  if (!["tcp", "udp", "6", "17"].includes(p)) return false;
  const lo = Number(from);
  const hi = Number(to ?? from);
  if (Number.isNaN(lo) || Number.isNaN(hi)) return false;
  if (lo === -1 || (lo === 0 && hi === 0) || (lo === 0 && hi === 65535)) return true;
  return lo <= port && port <= hi;
}

interface Ingress {
  readonly protocol: unknown;
  readonly from: unknown;
  readonly to: unknown;
  readonly cidrs: readonly string[];
  readonly where: string;
}

function ingressRules(type: string, a: Attrs): Ingress[] {
  switch (type) {
    case "aws_vpc_security_group_ingress_rule":
      return [{ protocol: a.ip_protocol, from: a.from_port, to: a.to_port, cidrs: [str(a.cidr_ipv4), str(a.cidr_ipv6)].filter((c): c is string => !!c), where: "" }];
    case "aws_security_group_rule":
      if (a.type !== "ingress") return [];
      return [{ protocol: a.protocol, from: a.from_port, to: a.to_port, cidrs: [...asList(a.cidr_blocks), ...asList(a.ipv6_cidr_blocks)].map(String), where: "" }];
    case "aws_security_group":
      return asList(a.ingress).map((r, i) => {
        const rule = (r ?? {}) as Attrs;
        return { protocol: rule.protocol, from: rule.from_port, to: rule.to_port, cidrs: [...asList(rule.cidr_blocks), ...asList(rule.ipv6_cidr_blocks)].map(String), where: `ingress[${i}] ` };
      });
    default:
      return [];
  }
}

function policyStrings(type: string, a: Attrs): Array<[string, unknown]> {
  switch (type) {
    case "aws_iam_policy":
    case "aws_iam_role_policy":
    case "aws_iam_user_policy":
    case "aws_iam_group_policy":
      return [["policy", a.policy]];
    case "aws_iam_role":
      return asList(a.inline_policy).map((p, i) => [`inline_policy[${i}].policy`, (p as Attrs | null)?.policy]);
    default:
      return [];
  }
}

const isWildcardAction = (action: unknown) => typeof action === "string" && (action === "*" || /^[A-Za-z0-9-]+:\*$/.test(action));

function decodeUserData(value: string, base64: boolean): string {
  if (!base64) return value;
  if (Token.isUnresolved(value)) return value;
  const bytes = Buffer.from(value, "base64");
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      return gunzipSync(bytes).toString("utf8");
    } catch {
      return bytes.toString("latin1");
    }
  }
  return bytes.toString("utf8");
}

/**
 * The findings of one resource, given its Terraform type and synthesized (snake_case) attributes.
 * Pure: exported for unit tests and reuse outside an aspect.
 */
export function checkResource(type: string, a: Attrs, props: ImagingLbGuardrailsProps = {}): GuardrailFinding[] {
  const findings: GuardrailFinding[] = [];
  const adminPorts = props.adminPorts ?? [8404];

  // IMDSv1
  if (type === "aws_instance" || type === "aws_launch_template") {
    const tokens = asObject(a.metadata_options)?.http_tokens;
    if (tokens !== "required") {
      findings.push({
        rule: "imdsv1",
        message: `${type} allows IMDSv1 (metadata_options.http_tokens is ${tokens === undefined ? "unset" : JSON.stringify(tokens)}); set metadataOptions.httpTokens to "required" (and httpPutResponseHopLimit to 1)`,
      });
    }
  }

  // Unencrypted volumes
  const unencrypted = (where: string) =>
    findings.push({ rule: "unencrypted-volume", message: `${type} has an unencrypted EBS volume (${where}); set encrypted: true` });
  if (type === "aws_instance") {
    const root = asObject(a.root_block_device);
    if (!root || !isTrue(root.encrypted)) unencrypted(root ? "root_block_device.encrypted is not true" : "no root_block_device: the root volume follows the account default");
    asList(a.ebs_block_device).forEach((d, i) => {
      if (!isTrue((d as Attrs | null)?.encrypted)) unencrypted(`ebs_block_device[${i}].encrypted is not true`);
    });
  }
  if (type === "aws_ebs_volume" && !isTrue(a.encrypted)) unencrypted("encrypted is not true");
  if (type === "aws_launch_template") {
    asList(a.block_device_mappings).forEach((m, i) => {
      const ebs = asObject((m as Attrs | null)?.ebs);
      if (ebs && !isTrue(ebs.encrypted)) unencrypted(`block_device_mappings[${i}].ebs.encrypted is not true`);
    });
  }

  // Ingress: SSH from anywhere, admin ports from the internet
  for (const rule of ingressRules(type, a)) {
    if (coversPort(rule.protocol, rule.from, rule.to, SSH_PORT)) {
      findings.push({
        rule: "ssh-ingress",
        message: `${type} ${rule.where}allows ingress on port 22 (from ${rule.cidrs.join(", ") || "a security group or prefix list"}); remove it: the load balancers are reached with SSM Session Manager, never SSH`,
      });
    }
    const world = rule.cidrs.filter((c) => WORLD.has(c));
    if (world.length === 0) continue;
    for (const port of adminPorts) {
      if (coversPort(rule.protocol, rule.from, rule.to, port)) {
        findings.push({
          rule: "admin-port-open-to-internet",
          message: `${type} ${rule.where}opens admin port ${port} to ${world.join(", ")}; allow only access.adminCidrs`,
        });
      }
    }
  }

  // IAM wildcard actions
  const wildcard = (where: string, actions: unknown[]) =>
    findings.push({
      rule: "iam-wildcard-action",
      message: `${type} ${where} allows wildcard actions ${actions.map((x) => JSON.stringify(x)).join(", ")}; list the exact actions needed`,
    });
  for (const [where, policy] of policyStrings(type, a)) {
    if (typeof policy !== "string") continue;
    let doc: unknown;
    try {
      doc = JSON.parse(policy);
    } catch {
      continue; // an unresolved reference (e.g. a policy document's json): the document itself is checked
    }
    asList((doc as Attrs | null)?.Statement).forEach((s, i) => {
      const statement = (s ?? {}) as Attrs;
      if (statement.Effect === "Deny") return;
      const bad = asList(statement.Action).filter(isWildcardAction);
      if (bad.length > 0) wildcard(`${where} Statement[${i}]`, bad);
    });
  }
  if (type === "aws_iam_policy_document") {
    asList(a.statement).forEach((s, i) => {
      const statement = (s ?? {}) as Attrs;
      if (statement.effect === "Deny") return;
      const bad = asList(statement.actions).filter(isWildcardAction);
      if (bad.length > 0) wildcard(`statement[${i}].actions`, bad);
    });
  }

  // Private keys in user data
  if (type === "aws_instance" || type === "aws_launch_template") {
    const sources: Array<[string, unknown, boolean]> = [
      ["user_data", a.user_data, type === "aws_launch_template"],
      ["user_data_base64", a.user_data_base64, true],
    ];
    for (const [field, value, base64] of sources) {
      if (typeof value !== "string") continue;
      if (PRIVATE_KEY_RE.test(decodeUserData(value, base64))) {
        findings.push({
          rule: "private-key-in-user-data",
          message: `${type} ${field} contains private-key material (-----BEGIN ... PRIVATE KEY-----), readable by anyone who can describe the instance; keep the PEM in Secrets Manager and fetch it at boot with the instance role`,
        });
      }
    }
  }
  return findings;
}

/** The Terraform types some rule looks at; other resources are not even synthesized by the aspect. */
export const GUARDED_TYPES: ReadonlySet<string> = new Set([
  "aws_instance",
  "aws_launch_template",
  "aws_ebs_volume",
  "aws_vpc_security_group_ingress_rule",
  "aws_security_group_rule",
  "aws_security_group",
  "aws_iam_policy",
  "aws_iam_role_policy",
  "aws_iam_user_policy",
  "aws_iam_group_policy",
  "aws_iam_role",
  "aws_iam_policy_document",
]);

interface SynthesizableElement extends IConstruct {
  readonly terraformResourceType: string;
  toTerraform(): Record<string, unknown>;
}

const isElement = (node: IConstruct): node is SynthesizableElement =>
  typeof (node as Partial<SynthesizableElement>).terraformResourceType === "string" && typeof (node as Partial<SynthesizableElement>).toTerraform === "function";

/** The synthesized attributes of a resource or data source (with escape-hatch overrides applied). */
function attributesOf(element: SynthesizableElement): Attrs {
  const tf = element.toTerraform() as Record<string, Record<string, Record<string, Attrs>> | undefined>;
  const block = tf.resource ?? tf.data ?? {};
  const byId = Object.values(block)[0] ?? {};
  return Object.values(byId)[0] ?? {};
}

/**
 * The guardrails aspect. Add it per stack (cdktf 0.21 never runs aspects added to the App):
 * `Aspects.of(stack).add(new ImagingLbGuardrails({ adminPorts: [8404, 10000] }))`.
 *
 * Rejects: IMDSv1 (`http_tokens` not `required`), unencrypted root/EBS volumes, ingress to an admin port
 * from 0.0.0.0/0 or ::/0, any ingress on port 22, IAM Allow statements with `*` or `service:*` actions,
 * and user data (plain, base64 or gzip+base64) containing `-----BEGIN ... PRIVATE KEY-----`.
 */
export class ImagingLbGuardrails implements IAspect {
  private readonly visited = new WeakSet<IConstruct>();

  constructor(private readonly props: ImagingLbGuardrailsProps = {}) {}

  /** Checks one construct; non-Terraform constructs are ignored. */
  visit(node: IConstruct): void {
    if (!isElement(node) || !GUARDED_TYPES.has(node.terraformResourceType) || this.visited.has(node)) return;
    this.visited.add(node);
    const findings = checkResource(node.terraformResourceType, attributesOf(node), this.props);
    for (const f of findings) {
      const message = `[guardrail ${f.rule}] ${f.message}`;
      Annotations.of(node).addError(message);
      node.node.addValidation({ validate: () => [message] });
    }
  }
}
