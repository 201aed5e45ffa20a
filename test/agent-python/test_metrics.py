"""The node's metrics (metrics.py): what one send carries, built from plain values and from a real HAProxy's
`show stat` (show-stat-haproxy-2.6.csv: HAProxy 2.6.12 with an http backend of three servers, one UP, one
backup, one DOWN; a tcp backend of three, one of them weight 0 and one set to maintenance; a sorry backend),
always with exactly the contract's names, units and dimensions."""
import os
import ssl
import time
import unittest

from imaging_lb_agent import metrics
from imaging_lb_agent.contract import CONTRACT

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "show-stat-haproxy-2.6.csv"), encoding="utf-8") as _file:
    SHOW_STAT = _file.read()
NOW = 1_800_000_000.0


def snapshot(**changes):
    base = dict(environment="prod", node="lb-a", vrrp=False, serving=True, role="single", role_changes=0, result="applied",
                status_age=12.4, backends=metrics.backends(SHOW_STAT), certificates=[], now=NOW)
    base.update(changes)
    return metrics.Snapshot(**base)


def by_name(data):
    out = {}
    for d in data:
        key = (d["MetricName"],) + tuple(x["Value"] for x in d["Dimensions"][2:])
        out[key] = d
    return out


class Backends(unittest.TestCase):
    def test_a_real_show_stat(self):
        got = {b.name: b for b in metrics.backends(SHOW_STAT)}
        self.assertEqual(sorted(got), ["be_tcp", "be_web"], "sorry_* backends are not sent (backendPattern)")
        web, tcp = got["be_web"], got["be_tcp"]
        self.assertEqual((web.mode, web.servers_up, web.servers_configured), ("http", 1, 2), "the backup server is not counted")
        self.assertEqual(web.http_5xx, 0)
        self.assertEqual((tcp.mode, tcp.servers_up, tcp.servers_configured, tcp.http_5xx), ("tcp", 2, 3, None),
                         "weight 0 is up, maintenance is not")

    def test_server_states(self):
        for status in ["UP", "UP 1/3", "DRAIN", "no check"]:
            self.assertTrue(metrics.server_up(status), status)
        for status in ["DOWN", "DOWN 1/2", "MAINT", "MAINT (resolution)", "NOLB"]:
            self.assertFalse(metrics.server_up(status), status)

    def test_no_header_is_an_error(self):
        with self.assertRaises(OSError):
            metrics.backends("")


class Build(unittest.TestCase):
    def test_a_single_node_sends_node_backend_and_certificate_figures_with_the_contracts_dimensions(self):
        not_after = time.strftime("%b %d %H:%M:%S %Y GMT", time.gmtime(NOW + 20 * 86400))
        data = metrics.build(snapshot(certificates=[{"path": "/etc/haproxy/certs/web.pem", "notAfter": not_after},
                                                    {"path": "/etc/haproxy/certs/ca.pem", "notAfter": None}]), metrics.Counters())
        got = by_name(data)
        self.assertEqual(got[("HaproxyServing",)]["Value"], 1.0)
        self.assertEqual(got[("RolloutFailed",)]["Value"], 0.0)
        self.assertEqual(got[("StatusAge",)], {"MetricName": "StatusAge", "Dimensions": [{"Name": "Environment", "Value": "prod"}, {"Name": "Node", "Value": "lb-a"}],
                                               "Value": 12.0, "Unit": "Seconds"})
        self.assertEqual(got[("ServersUp", "be_tcp")]["Dimensions"], [{"Name": "Environment", "Value": "prod"}, {"Name": "Node", "Value": "lb-a"},
                                                                     {"Name": "Backend", "Value": "be_tcp"}])
        self.assertEqual(got[("CertificateDaysLeft", "web")]["Value"], 20.0)
        self.assertNotIn(("CertificateDaysLeft", "ca"), got, "a certificate without a readable date is not sent")
        self.assertNotIn(("HaRole",), got, "a single node has no role")
        self.assertNotIn(("ConnectionErrors", "be_tcp"), got, "no counter delta before a baseline")
        for d in data:
            definition = CONTRACT["metrics"]["definitions"][d["MetricName"]]
            self.assertEqual(d["Unit"], definition["unit"], d)
            self.assertEqual([x["Name"] for x in d["Dimensions"]], CONTRACT["metrics"]["scopes"][definition["scope"]], d)

    def test_counters_are_deltas_and_a_reload_restarts_them(self):
        counters = metrics.Counters()
        web = metrics.Backend("be_web", "http", 1, 2, 3, connection_errors=10, http_5xx=4)
        metrics.build(snapshot(backends=[web]), counters)
        second = by_name(metrics.build(snapshot(backends=[web._replace(connection_errors=15, http_5xx=9)]), counters))
        self.assertEqual((second[("ConnectionErrors", "be_web")]["Value"], second[("Http5xx", "be_web")]["Value"]), (5.0, 5.0))
        reloaded = by_name(metrics.build(snapshot(backends=[web._replace(connection_errors=2, http_5xx=0)]), counters))
        self.assertEqual(reloaded[("ConnectionErrors", "be_web")]["Value"], 2.0, "a new worker counts from zero")
        self.assertEqual(second[("Sessions", "be_web")]["Value"], 3.0)

    def test_failed_results(self):
        for result in ["failed", "held", "rolled-back", "rollback-failed", "refused", "bootstrap-failed"]:
            self.assertEqual(by_name(metrics.build(snapshot(result=result), metrics.Counters()))[("RolloutFailed",)]["Value"], 1.0, result)
        for result in ["applied", "applying", "waiting-for-peer", "retrying"]:
            self.assertEqual(by_name(metrics.build(snapshot(result=result), metrics.Counters()))[("RolloutFailed",)]["Value"], 0.0, result)

    def test_no_roles_without_keepalived(self):
        # A single node, and vipMode nlb's nodes (a peer, but no VIP that moves): no role to report.
        got = by_name(metrics.build(snapshot(vrrp=False, role="BACKUP", role_changes=1), metrics.Counters()))
        self.assertFalse([k for k in got if k[0] in ("HaRole", "RoleChanges")])

    def test_pair_roles(self):
        roles = CONTRACT["metrics"]["haRoles"]
        for role, serving, expected in [("MASTER", True, roles["MASTER"]), ("BACKUP", True, roles["BACKUP"]), ("BACKUP", False, roles["FAULT"])]:
            got = by_name(metrics.build(snapshot(vrrp=True, role=role, serving=serving, role_changes=2), metrics.Counters()))
            self.assertEqual(got[("HaRole",)]["Value"], float(expected), (role, serving))
            self.assertEqual(got[("RoleChanges",)]["Value"], 2.0)

    def test_haproxy_down(self):
        got = by_name(metrics.build(snapshot(serving=False, backends=None), metrics.Counters()))
        self.assertEqual(got[("HaproxyServing",)]["Value"], 0.0)
        self.assertFalse([k for k in got if k[0] == "ServersUp"], "no backend figures when the runtime API does not answer")

    def test_a_dimension_outside_the_contract_is_refused(self):
        with self.assertRaises(ValueError):
            metrics.datum("ServersUp", 1, Environment="prod", Node="lb-a")


class Helpers(unittest.TestCase):
    def test_days_left_reads_openssls_dates(self):
        self.assertEqual(metrics.days_left("Jan  5 00:00:00 2027 GMT", ssl.cert_time_to_seconds("Jan  1 00:00:00 2027 GMT")), 4.0)
        self.assertIsNone(metrics.days_left("soon", NOW))

    def test_role_watch_counts_master_changes(self):
        watch = metrics.RoleWatch()
        for role in ["BACKUP", "BACKUP", "MASTER", "MASTER", "BACKUP"]:
            watch.observe(role)
        self.assertEqual(watch.take(), 2)
        self.assertEqual(watch.take(), 0)

    def test_one_send_per_wall_clock_interval_in_its_second_half(self):
        minute = 1_800_000_000 - 1_800_000_000 % 60
        self.assertIsNone(metrics.slot(60, now=minute + 29.9), "not in the first half of a minute")
        self.assertEqual(metrics.slot(60, now=minute + 30), minute // 60)
        self.assertEqual(metrics.slot(60, now=minute + 59.9), minute // 60, "the same slot: no second send")
        self.assertIsNone(metrics.slot(60, now=minute + 60), "the next minute's first half")
        self.assertIsNone(metrics.slot(0, now=minute + 45), "interval 0: nothing is sent")

    def test_chunks(self):
        self.assertEqual([len(c) for c in metrics.chunks([{}] * 2001)], [1000, 1000, 1])

    def test_certificate_name(self):
        self.assertEqual(metrics.certificate_name("/etc/haproxy/certs/web.pem"), "web")


if __name__ == "__main__":
    unittest.main()
