/**
 * The two-arm single-node boot scenario, shared by the boot test and `npm run bench:boot`:
 * examples/agfa-ei-two-arm.yaml with `loadBalancer.os: debian-13`, its user data rendered by
 * `nodeArtifacts` and passed unmodified (gzipped, as EC2 passes it), on a SIMULATED VPC.
 *
 * Baked (the boot test): `image: baked`, no natSubnet; the disk is built with the environment's own image
 * recipe and the network has no way to any package mirror. Stock (bench:boot only): `image: stock` on a disk
 * without the node's packages, with a SIMULATED package mirror in the VPC (the .deb files the recipe installed,
 * served under deb.debian.org's name) for the bootstrap's install at boot.
 */
import { bundleSecret } from "./harness";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { nodeArtifacts, type NodeArtifacts } from "../../lib/node/artifacts";
import { configBucketName, storeKeys } from "../../lib/node/bundle";
import { manifestKeyAlias } from "../../lib/contract/node-contract";
import { resolveBootstrapSpec } from "../../lib/bootstrap/bootstrap-spec";
import { parseEnvironment } from "../../lib/load/load";
import { startFakeImds, type FakeImds } from "../helpers/fake-imds";
import { makeSelfSignedPem } from "../helpers/tools";
import {
  bootImage, cleanupAll, onCleanup, REPO, renderImageRecipe, requireBootTools, run, startProcess, startSimulatedAws, SimulatedVpc,
  testEnvironmentText, Vm, type BootImage, type CmdResult, type NetHost, type SimulatedAws,
} from "./harness";

export const MAC0 = "0a:1b:00:00:00:01";
export const MAC1 = "0a:1b:00:00:00:02";
export const STATS_PASSWORD = "boot-Test.Pw+42";
/** What the tiny server on the internal network answers. */
export const SERVER_MARKER = "answered by the server on the internal network (boot test)";

export type ImageKind = "baked" | "stock";

/** SIMULATED package mirror of the stock scenario: its address in the VPC and the name it answers for. */
export const SIMULATED_MIRROR = { address: "10.20.1.6", name: "deb.debian.org" } as const;

export interface TwoArm {
  readonly dir: string;
  readonly artifacts: NodeArtifacts;
  readonly image: BootImage;
  /** The rendered recipe the baked disk was built with (the stock disk has none of it). */
  readonly recipeFile: string;
  /** Stock only: the SIMULATED package mirror's folder (an apt repository of the recipe's .deb files). */
  readonly mirror?: string;
  /** Routing table of eth0 and eth1 (from the resolved bootstrap spec). */
  readonly tables: readonly [number, number];
  readonly vpc: SimulatedVpc;
  readonly imds: FakeImds;
  readonly aws: SimulatedAws;
  readonly vm: Vm;
  readonly client: NetHost;
  readonly admin: NetHost;
  readonly webPem: string;
  /** curl from the client namespace. */
  clientCurl(args: string[]): Promise<CmdResult>;
  /** curl from the admin namespace. */
  adminCurl(args: string[]): Promise<CmdResult>;
  /** Simulates EC2 attaching eth1's ENI: IMDS lists it and the NIC is hot-plugged. */
  attachEth1(): Promise<void>;
  cleanup(): Promise<void>;
}

const EXAMPLE = join(REPO, "examples", "agfa-ei-two-arm.yaml");

/** The example environment's text, on Debian 13 (the OS the test image runs), baked or stock. */
export function exampleText(image: ImageKind = "baked"): string {
  return testEnvironmentText(readFileSync(EXAMPLE, "utf8"), EXAMPLE, image);
}

/** The example node's artifacts, on Debian 13, baked or stock. */
export function exampleArtifacts(image: ImageKind = "baked"): NodeArtifacts {
  return nodeArtifacts(parseEnvironment(exampleText(image), `${EXAMPLE} (loadBalancer.os: debian-13, image: ${image})`), "lb-a");
}

export const sha256 = (data: string | Buffer): string => createHash("sha256").update(data).digest("hex");

/** The account test/helpers/fake-imds.ts reports (identity-credentials/ec2/info). */
export const IMDS_ACCOUNT = "123456789012";

/** The node's configuration bucket: the stack's own (named after the account the node runs in). */
export const bundleBucket = (artifacts: NodeArtifacts): string =>
  artifacts.bootstrap.configStore.bucket ?? configBucketName(artifacts.bootstrap.envName, IMDS_ACCOUNT);

/**
 * Python (boto3 `s3` and `kms` clients, see SimulatedAws.python) creating the environment's bucket and
 * manifest-signing key, and uploading each node's bundle as the stack does: content-addressed files first,
 * then the manifest's signature (kms:Encrypt of the contract's plaintext under its encryption context, as
 * `aws_kms_ciphertext` does), then the manifest.
 */
export function seedBundleCode(nodes: readonly NodeArtifacts[], region: string): string {
  const bucket = bundleBucket(nodes[0]);
  const prefix = nodes[0].bootstrap.configStore.prefix;
  const files: Array<[string, string]> = nodes.flatMap(({ bundle }) => bundle.files.map((f): [string, string] => [storeKeys.file(prefix, bundle.node, f.sha256), f.content]));
  const signed = nodes.map(({ bundle }) => ({
    manifestKey: storeKeys.manifest(prefix, bundle.node),
    manifest: bundle.manifestText,
    signatureKey: storeKeys.signature(prefix, bundle.node),
    sha256: bundle.manifestSha256,
    plaintext: bundle.signature.plaintext,
    context: bundle.signature.context,
  }));
  return [
    "import base64, json",
    `s3.create_bucket(Bucket=${JSON.stringify(bucket)}, CreateBucketConfiguration={"LocationConstraint": ${JSON.stringify(region)}})`,
    `key = kms.create_key(Description="SIMULATED manifest key")["KeyMetadata"]["KeyId"]`,
    `kms.create_alias(AliasName=${JSON.stringify(manifestKeyAlias(nodes[0].bootstrap.envName))}, TargetKeyId=key)`,
    `for k, body in json.loads(${JSON.stringify(JSON.stringify(files))}):`,
    `  s3.put_object(Bucket=${JSON.stringify(bucket)}, Key=k, Body=body.encode())`,
    `for n in json.loads(${JSON.stringify(JSON.stringify(signed))}):`,
    `  blob = kms.encrypt(KeyId=key, Plaintext=n["plaintext"].encode(), EncryptionContext=n["context"])["CiphertextBlob"]`,
    `  sig = json.dumps({"format": 1, "manifestSha256": n["sha256"], "ciphertext": base64.b64encode(blob).decode()})`,
    `  s3.put_object(Bucket=${JSON.stringify(bucket)}, Key=n["signatureKey"], Body=sig.encode())`,
    `  s3.put_object(Bucket=${JSON.stringify(bucket)}, Key=n["manifestKey"], Body=n["manifest"].encode())`,
    'print("uploaded")',
  ].join("\n");
}

/** The node's status object in the SIMULATED S3, as the agent wrote it (undefined before it wrote one). */
export async function agentStatus(s: TwoArm): Promise<Record<string, unknown> | undefined> {
  const key = storeKeys.status(s.artifacts.bootstrap.configStore.prefix, s.artifacts.bundle.node);
  const bucket = bundleBucket(s.artifacts);
  const r = await s.aws.python(`try:\n  print(s3.get_object(Bucket=${JSON.stringify(bucket)}, Key=${JSON.stringify(key)})["Body"].read().decode())\nexcept s3.exceptions.NoSuchKey:\n  print("{}")`);
  if (r.code !== 0) throw new Error(`reading the agent's status from moto: ${r.stderr}`);
  const status = JSON.parse(r.stdout) as Record<string, unknown>;
  return Object.keys(status).length === 0 ? undefined : status;
}

/** Sets up the SIMULATED VPC, IMDS and AWS, and starts the VM (eth1 present from the start unless `eth1Late`). */
export async function startTwoArm(dir: string, opts: { eth1Late: boolean; image?: ImageKind }): Promise<TwoArm> {
  requireBootTools();
  mkdirSync(dir, { recursive: true });
  const kind = opts.image ?? "baked";
  const artifacts = exampleArtifacts(kind);
  const env = artifacts.node;
  const resolved = resolveBootstrapSpec(artifacts.bootstrap);
  const tables: [number, number] = [resolved.interfaces[0].table, resolved.interfaces[1].table];
  const internal = env.internalSubnet.cidr;
  const external = env.externalSubnet?.cidr;
  if (external === undefined) throw new Error("the example is two-arm: it must have an external subnet");
  const region = artifacts.bootstrap.region;
  // The baked disk is built with the environment's recipe; so is the SIMULATED mirror the stock node uses.
  const recipeFile = renderImageRecipe(exampleText("baked"), join(dir, "recipe"));
  const baked = bootImage(recipeFile);
  const img = kind === "baked" ? baked : bootImage();
  try {
    const vpc = new SimulatedVpc(join(dir, "net"));
    vpc.addSubnet("brint", internal);
    vpc.addSubnet("brext", external);
    const tap0 = vpc.addTap(internal);
    const tap1 = vpc.addTap(external);
    const awsAddress = "10.20.1.5";
    vpc.addRouterAddress(internal, awsAddress);
    vpc.reserve(MAC0, env.internalAddress);
    vpc.reserve(MAC1, env.externalAddress as string);
    if (kind === "stock") {
      // SIMULATED package mirror (stock only): exactly the .deb files the recipe installed, as an apt
      // repository served over HTTP in the router namespace, under the name the image's sources.list uses.
      const mirror = baked.mirror as string;
      vpc.addRouterAddress(internal, SIMULATED_MIRROR.address);
      startProcess("ip", ["netns", "exec", vpc.router, "python3", "-m", "http.server", "80", "--bind", SIMULATED_MIRROR.address, "--directory", mirror], join(dir, "mirror.log"));
      vpc.startDnsmasq(awsAddress, { [SIMULATED_MIRROR.name]: SIMULATED_MIRROR.address });
    } else {
      vpc.startDnsmasq(awsAddress);
    }

    // SIMULATED IMDSv2 reporting the two ENIs (eth1's secondary IPs are the VIPs, as on EC2).
    const imds = await startFakeImds(
      [
        { mac: MAC0, deviceNumber: 0, localIpv4s: [env.internalAddress], subnetCidr: internal },
        {
          mac: MAC1, deviceNumber: 1, localIpv4s: [env.externalAddress as string, ...artifacts.bootstrap.interfaces[1].addresses ?? []],
          subnetCidr: external, attached: !opts.eth1Late,
        },
      ],
      { socketPath: join(dir, "imds.sock"), roleName: "imaging-lb-boot-test-role" },
    );
    onCleanup(() => imds.close());
    vpc.startImdsRelay(join(dir, "imds.sock"));

    // SIMULATED AWS (moto behind TLS) with the secrets the example names (moto resolves a full ARN by the
    // name after "secret:").
    const aws = await startSimulatedAws(vpc, img, awsAddress, region);
    const webPem = readFileSync(makeSelfSignedPem(dir, "xero.boot.test"), "utf8");
    const secretName = (arn: string): string => arn.slice(arn.indexOf(":secret:") + 8);
    const secrets: Record<string, string> = {
      [secretName(bundleSecret(artifacts, "pem"))]: webPem,
      [secretName(bundleSecret(artifacts, "env"))]: STATS_PASSWORD,
    };
    const seeded = await aws.python(
      `import json\nfor n, v in json.loads(${JSON.stringify(JSON.stringify(secrets))}).items():\n  sm.create_secret(Name=n, SecretString=v)\nprint("seeded")`,
    );
    if (seeded.code !== 0) throw new Error(`seeding moto (SIMULATED AWS): ${seeded.stderr}`);
    // The configuration bundle as the stack uploads it: content-addressed files, then the manifest, in the
    // stack's own bucket (named after the account the SIMULATED IMDS reports).
    const uploaded = await aws.python(seedBundleCode([artifacts], region));
    if (uploaded.code !== 0) throw new Error(`uploading the configuration bundle to moto (SIMULATED S3): ${uploaded.stderr}`);

    // The tiny servers on the internal network (both of the example's server addresses, one namespace).
    const servers = vpc.addHost(["10.20.1.21", "10.20.1.22"], { cidr: internal });
    const www = join(dir, "www");
    mkdirSync(www, { recursive: true });
    writeFileSync(join(www, "index.html"), `${SERVER_MARKER}\n`);
    startProcess("ip", ["netns", "exec", servers.ns, "python3", "-m", "http.server", "80", "--directory", www], join(dir, "server.log"));

    const client = vpc.addHost(["10.30.0.5"], { ownSubnet: "10.30.0.0/24" });
    const admin = vpc.addHost(["10.99.0.5"], { ownSubnet: "10.99.0.0/24" });

    const vm = new Vm({
      name: "lb-a",
      image: img,
      dir: join(dir, "vm"),
      ns: vpc.router,
      userData: Buffer.from(artifacts.userDataBase64, "base64"),
      nics: opts.eth1Late ? [{ mac: MAC0, tap: tap0, slot: 5 }] : [{ mac: MAC0, tap: tap0, slot: 5 }, { mac: MAC1, tap: tap1, slot: 6 }],
      laterNics: opts.eth1Late ? [{ mac: MAC1, tap: tap1, slot: 6 }] : [],
    });
    vm.start();
    const curlIn = (ns: string) => (args: string[]) => run("ip", ["netns", "exec", ns, "curl", "-sS", "--max-time", "10", ...args], 30_000);
    // "-f" where the answer must be a success: an HTTP error (e.g. 503, no server up) is then a failure.
    return {
      dir, artifacts, image: img, recipeFile, mirror: kind === "stock" ? baked.mirror : undefined, tables, vpc, imds, aws, vm, client, admin, webPem,
      clientCurl: curlIn(client.ns),
      adminCurl: curlIn(admin.ns),
      attachEth1: async () => {
        imds.attach(MAC1);
        await vm.hotplug(0);
      },
      cleanup: cleanupAll,
    };
  } catch (err) {
    await cleanupAll();
    throw err;
  }
}
