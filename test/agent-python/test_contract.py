"""What the agent accepts from the store (contract.py, store.py): bundle paths and modes, bundle.env, the
secrets list, the manifest. Everything else is refused before anything is downloaded or run."""
import json
import unittest

from imaging_lb_agent import contract, store
from imaging_lb_agent.contract import ContractError

SHA = "0" * 64


def manifest(files, **changes):
    doc = {"format": 1, "environment": "prod", "node": "lb-a", "version": "1" * 16, "release": "2" * 16, "files": files}
    doc.update(changes)
    return json.dumps(doc).encode()


BASE = [
    {"path": "/etc/haproxy/haproxy.cfg", "mode": "0640", "sha256": SHA},
    {"path": "/etc/imaging-lb/bundle.env", "mode": "0644", "sha256": SHA},
    {"path": "/etc/imaging-lb/secrets.list", "mode": "0644", "sha256": SHA},
]


class BundlePaths(unittest.TestCase):
    def test_known_paths_with_their_modes(self):
        self.assertEqual(contract.bundle_file_kind("/etc/haproxy/haproxy.cfg", "0640"), "haproxy-config")
        self.assertEqual(contract.bundle_file_kind("/etc/haproxy/errors/xero/503.http", "0644"), "error-page")
        self.assertEqual(contract.bundle_file_kind("/usr/local/lib/imaging-lb/agent/imaging_lb_agent/agent.py", "0644"), "agent-module")

    def test_a_bucket_writer_cannot_reach_root(self):
        for path in ["/etc/cron.d/x", "/root/.ssh/authorized_keys", "/etc/sudoers.d/x", "/usr/local/sbin/evil",
                     "/etc/haproxy/errors/../../cron.d/x", "/etc/haproxy//haproxy.cfg", "/etc/haproxy/./haproxy.cfg",
                     "/usr/local/lib/imaging-lb/agent/imaging_lb_agent/../../../../bin/sh.py"]:
            with self.assertRaises(ContractError, msg=path):
                contract.bundle_file_kind(path, "0644")

    def test_modes_are_exact(self):
        for path, mode in [("/etc/haproxy/haproxy.cfg", "0777"), ("/etc/imaging-lb/bundle.env", "4755"),
                           ("/usr/local/lib/imaging-lb/agent/imaging_lb_agent/agent.py", "0755")]:
            with self.assertRaises(ContractError, msg=path):
                contract.bundle_file_kind(path, mode)


class Settings(unittest.TestCase):
    GOOD = "RUNTIME_SOCKET=/run/haproxy/admin.sock\nGATE_SECONDS=25\nPEER=lb-b\nMASTER_VIP=10.0.2.100\n"

    def test_good_settings(self):
        self.assertEqual(contract.parse_bundle_env(self.GOOD)["GATE_SECONDS"], "25")

    def test_injections_are_refused_never_evaluated(self):
        for line in ["RUNTIME_SOCKET=/run/x.sock!!SYSTEM:touch /tmp/pwned", "GATE_SECONDS=PROG[$(touch /tmp/pwned)]",
                     "GATE_SECONDS=0", "PEER=lb-b;reboot", "MASTER_VIP=10.0.2.999", "HEALTH_URL=http://evil.example/",
                     "LD_PRELOAD=/tmp/x.so", "RUNTIME_SOCKET"]:
            with self.assertRaises(ContractError, msg=line) as caught:
                contract.parse_bundle_env(line + "\n")
            self.assertIn("line 1", str(caught.exception))

    def test_every_problem_at_once(self):
        with self.assertRaises(ContractError) as caught:
            contract.parse_bundle_env("GATE_SECONDS=x\nFOO=1\n")
        self.assertIn("line 1", str(caught.exception))
        self.assertIn("line 2", str(caught.exception))


class SecretsList(unittest.TestCase):
    ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:st-mary/web-AbCdEf"

    def test_pem_and_env_lines(self):
        entries = contract.parse_secrets_list(f"# c\npem {self.ARN} /etc/haproxy/certs/web.pem\nenv IMAGING_LB_STATS_PASSWORD {self.ARN}\n")
        self.assertEqual([e.kind for e in entries], ["pem", "env"])

    def test_a_pem_lands_in_the_certificate_folder_only(self):
        for path in ["/etc/cron.d/x.pem", "/etc/haproxy/certs/../../cron.d/x.pem", "/root/.ssh/authorized_keys"]:
            with self.assertRaises(ContractError, msg=path):
                contract.parse_secrets_list(f"pem {self.ARN} {path}\n")

    def test_env_names_and_arns(self):
        for line in [f"env LD_PRELOAD {self.ARN}", "env IMAGING_LB_X not-an-arn", f"eval {self.ARN} x"]:
            with self.assertRaises(ContractError, msg=line):
                contract.parse_secrets_list(line + "\n")

    def test_env_values(self):
        self.assertTrue(contract.env_value_ok("Zm9vYmFy+/="))
        self.assertFalse(contract.env_value_ok("$(reboot)"))
        self.assertFalse(contract.env_value_ok("a b"))


class Manifest(unittest.TestCase):
    def test_parse(self):
        m = store.parse_manifest(manifest(BASE), "lb-a", "prod", "etag")
        self.assertEqual((m.version, m.release, len(m.files)), ("1" * 16, "2" * 16, 3))

    def test_refusals(self):
        cases = {
            "another node": manifest(BASE, node="lb-b"),
            "another format": manifest(BASE, format=2),
            "a bad version": manifest(BASE, version="x"),
            "a path outside the contract": manifest(BASE + [{"path": "/etc/cron.d/x", "mode": "0644", "sha256": SHA}]),
            "a duplicate": manifest(BASE + [BASE[0]]),
            "no haproxy.cfg": manifest(BASE[1:]),
            "a bad sha": manifest([{**BASE[0], "sha256": "x"}] + BASE[1:]),
            "not JSON": b"{",
        }
        for what, raw in cases.items():
            with self.assertRaises(ContractError, msg=what):
                store.parse_manifest(raw, "lb-a", "prod")

    def test_signature_input_follows_the_contract(self):
        plaintext, context = store.signature_input("prod", "lb-a", SHA)
        self.assertEqual(plaintext, f"imaging-lb manifest prod/lb-a sha256:{SHA}")
        self.assertEqual(context, {"imaging-lb:environment": "prod", "imaging-lb:node": "lb-a", "imaging-lb:purpose": "manifest"})


if __name__ == "__main__":
    unittest.main()


class ServerState(unittest.TestCase):
    def test_configured_servers(self):
        from imaging_lb_agent import haproxy
        cfg = "global\n    stats socket /run/x\nbackend be_dicom\n    server ei-core-1 10.0.1.21 check\n    server ei-core-2 10.0.1.22:104 check # c\n" \
              "listen stats\n    server s 127.0.0.1:+1\npeers p\n    server lb-a 10.0.1.10:10000\n"
        self.assertEqual(haproxy.configured_servers(cfg), {("be_dicom", "ei-core-1"): ("10.0.1.21", "0"), ("be_dicom", "ei-core-2"): ("10.0.1.22", "104")})
