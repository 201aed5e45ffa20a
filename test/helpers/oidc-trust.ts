/**
 * Enough of IAM's evaluation of a role trust policy to decide whether an OIDC token (its claims) may
 * assume the role with sts:AssumeRoleWithWebIdentity, and enough of GitHub's and GitLab's token rules to
 * compute the claims a given job receives.
 *
 * IAM side: an Allow statement for the action whose Principal.Federated is the issuer's provider ARN and
 * whose every condition holds; any matching Deny wins. Operators StringEquals and StringLike (`*` any run
 * of characters, `?` one character, case-sensitive); several values of one key: any of them; several keys
 * and operators: all of them; a key missing from the request: the condition fails. Condition keys IAM
 * offers for a generic OIDC provider are `<issuer>:aud`, `:sub`, `:azp`, `:amr` (and `:oaud`): a policy
 * naming any other claim (`environment`, `ref_protected`, ...) is rejected here, because IAM would not
 * evaluate it as the author hoped.
 */

/** The claims of one token, as IAM sees them. */
export interface OidcToken {
  /** Issuer host, e.g. token.actions.githubusercontent.com or gitlab.com. */
  readonly issuer: string;
  readonly aud: string;
  readonly sub: string;
}

interface Statement {
  readonly Effect: "Allow" | "Deny";
  readonly Principal?: { readonly Federated?: string | readonly string[] };
  readonly Action: string | readonly string[];
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, string | readonly string[]>>>>;
}

/** A trust policy document. */
export interface TrustPolicy {
  readonly Version: string;
  readonly Statement: readonly Statement[];
}

/** The condition keys IAM evaluates for OIDC federation (anything else in the token is not available). */
const OIDC_KEYS = new Set(["aud", "oaud", "sub", "azp", "amr"]);

/** IAM's StringLike: `*` any (possibly empty) run of characters, `?` exactly one; everything else literal. */
export function stringLike(pattern: string, value: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "s").test(value);
}

const list = (v: string | readonly string[] | undefined): readonly string[] => (v === undefined ? [] : typeof v === "string" ? [v] : v);

function conditionsHold(statement: Statement, token: OidcToken): boolean {
  for (const [operator, keys] of Object.entries(statement.Condition ?? {})) {
    const test = operator === "StringEquals" ? (p: string, v: string) => p === v : operator === "StringLike" ? stringLike : undefined;
    if (!test) throw new Error(`condition operator ${operator} is not modelled (StringEquals, StringLike)`);
    for (const [key, values] of Object.entries(keys)) {
      const [issuer, claim] = [key.slice(0, key.lastIndexOf(":")), key.slice(key.lastIndexOf(":") + 1)];
      if (!OIDC_KEYS.has(claim)) throw new Error(`condition key ${key}: IAM does not offer the claim '${claim}' of an OIDC token as a condition key (only ${[...OIDC_KEYS].join(", ")})`);
      if (issuer !== token.issuer) return false; // a key of another provider is absent from this request
      const actual = claim === "oaud" ? token.aud : claim === "aud" || claim === "sub" ? token[claim] : undefined;
      if (actual === undefined || !list(values).some((p) => test(p, actual))) return false;
    }
  }
  return true;
}

function applies(statement: Statement, token: OidcToken, account: string): boolean {
  const actions = list(statement.Action);
  if (!actions.some((a) => stringLike(a, "sts:AssumeRoleWithWebIdentity"))) return false;
  const provider = `arn:aws:iam::${account}:oidc-provider/${token.issuer}`;
  if (!list(statement.Principal?.Federated).includes(provider)) return false;
  return conditionsHold(statement, token);
}

/** Whether `token` may assume a role with this trust policy (in `account`, as the placeholder reads). */
export function mayAssume(policy: TrustPolicy, token: OidcToken, account = "ACCOUNT_ID"): boolean {
  if (policy.Version !== "2012-10-17") throw new Error(`policy Version ${policy.Version}: IAM wants 2012-10-17 for condition keys with variables`);
  if (policy.Statement.some((s) => s.Effect === "Deny" && applies(s, token, account))) return false;
  return policy.Statement.some((s) => s.Effect === "Allow" && applies(s, token, account));
}

/** A GitHub Actions job run: the workflow's event and ref, the job's environment (if any). */
export interface GithubRun {
  readonly repository: string;
  readonly event: string;
  readonly ref: string;
  readonly environment?: string;
}

/**
 * GitHub's default `sub` claim: `repo:OWNER/REPO:environment:NAME` for a job with an environment (whatever
 * the event), else `repo:OWNER/REPO:pull_request` on pull_request, else `repo:OWNER/REPO:ref:REF`.
 */
export function githubSub(run: GithubRun): string {
  if (run.environment) return `repo:${run.repository}:environment:${run.environment}`;
  if (run.event === "pull_request" || run.event === "pull_request_target") return `repo:${run.repository}:pull_request`;
  return `repo:${run.repository}:ref:${run.ref}`;
}

/**
 * GitLab's `sub` claim: `project_path:GROUP/PROJECT:ref_type:branch:ref:NAME` (ref_type tag for tags); in a
 * merge request pipeline the ref is the source branch.
 */
export function gitlabSub(projectPath: string, ref: string, refType: "branch" | "tag" = "branch"): string {
  return `project_path:${projectPath}:ref_type:${refType}:ref:${ref}`;
}
