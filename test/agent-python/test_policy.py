"""The agent's decisions (policy.py), driven with plain values: retry and back-off, hold and release, the pair's
order (split brain, no MASTER, a dead peer), the secrets refresh."""
import unittest

from imaging_lb_agent import policy
from imaging_lb_agent.policy import Decision, Failure, Peer, SecretsSituation, Situation

NEW, OLD = "a" * 16, "b" * 16
RELEASE = "c" * 16
STALE_AFTER = 180.0


def peer(result="applied", release=OLD, role="MASTER", age=5.0, desired=RELEASE, **extra):
    status = {"result": result, "appliedRelease": release, "desiredRelease": desired, "role": role, **extra}
    return Peer("lb-b", status, age, STALE_AFTER)


def situation(**changes) -> Situation:
    base = dict(now=1000.0, desired_version=NEW, desired_release=RELEASE, applied_version=OLD, role="BACKUP",
                node_role="primary", peer=peer(), failure=None, waiting_since=None, peer_wait_seconds=600, commands=frozenset())
    base.update(changes)
    return Situation(**base)


class Decide(unittest.TestCase):
    def test_applied_is_idle(self):
        self.assertEqual(policy.decide(situation(desired_version=OLD)).action, "idle")

    def test_single_node_applies(self):
        self.assertEqual(policy.decide(situation(role="single", node_role="single", peer=None)).action, "apply")

    def test_nothing_applied_yet_applies_without_waiting(self):
        d = policy.decide(situation(applied_version=None, role="MASTER"))
        self.assertEqual((d.action, d.reason), ("apply", "nothing applied yet"))

    def test_backup_goes_first(self):
        self.assertEqual(policy.decide(situation(role="BACKUP", peer=peer(role="MASTER"))).action, "apply")

    def test_master_waits_for_its_peer(self):
        d = policy.decide(situation(role="MASTER", peer=peer(role="BACKUP"), waiting_since=990.0))
        self.assertEqual((d.action, d.result), ("wait", "waiting-for-peer"))

    def test_master_applies_once_the_peer_reports_the_release(self):
        d = policy.decide(situation(role="MASTER", peer=peer(role="BACKUP", release=RELEASE)))
        self.assertEqual(d.action, "apply")
        self.assertIn("applied release", d.reason)

    def test_master_holds_when_the_peer_failed_the_release(self):
        d = policy.decide(situation(role="MASTER", peer=peer(role="BACKUP", result="rolled-back", error="gate: s1 DOWN")))
        self.assertEqual((d.action, d.result), ("hold", "held"))
        self.assertIn("gate: s1 DOWN", d.reason)
        self.assertIn("imaging-lb release", d.reason)

    def test_a_held_master_is_released_by_an_operator(self):
        d = policy.decide(situation(role="MASTER", peer=peer(role="BACKUP", result="rolled-back"), commands=frozenset({"release"})))
        self.assertEqual(d.action, "apply")

    def test_master_holds_after_the_peer_wait_but_keeps_deciding(self):
        held = policy.decide(situation(role="MASTER", peer=peer(role="BACKUP"), waiting_since=1000.0 - 601))
        self.assertEqual(held.action, "hold")
        # Not for ever: the moment the peer reports, the MASTER applies.
        self.assertEqual(policy.decide(situation(role="MASTER", waiting_since=0.0, peer=peer(role="BACKUP", release=RELEASE))).action, "apply")

    def test_a_dead_peer_does_not_hold_the_master_for_ever(self):
        d = policy.decide(situation(role="MASTER", peer=peer(role="BACKUP", age=STALE_AFTER + 1)))
        self.assertEqual(d.action, "apply")
        self.assertIn("silent", d.reason)

    def test_a_peer_with_no_status_at_all_is_silent(self):
        d = policy.decide(situation(role="MASTER", peer=Peer("lb-b", None, None, STALE_AFTER)))
        self.assertEqual(d.action, "apply")

    def test_split_brain_the_secondary_goes_first(self):
        both = dict(role="MASTER", peer=peer(role="MASTER"))
        self.assertEqual(policy.decide(situation(node_role="secondary", **both)).action, "apply")
        primary = policy.decide(situation(node_role="primary", **both))
        self.assertEqual(primary.action, "wait")
        self.assertIn("split brain", primary.reason)

    def test_no_master_the_secondary_goes_first_and_the_primary_waits(self):
        neither = dict(role="BACKUP", peer=peer(role="BACKUP"))
        self.assertEqual(policy.decide(situation(node_role="secondary", **neither)).action, "apply")
        d = policy.decide(situation(node_role="primary", **neither))
        self.assertEqual(d.action, "wait")
        self.assertIn("neither node holds the VIPs", d.reason)

    def test_a_node_going_first_waits_while_its_peer_is_applying(self):
        d = policy.decide(situation(role="BACKUP", peer=peer(result="applying", role="MASTER")))
        self.assertEqual(d.action, "wait")

    def test_a_stale_applying_peer_does_not_block(self):
        d = policy.decide(situation(role="BACKUP", peer=peer(result="applying", role="MASTER", age=STALE_AFTER + 5)))
        self.assertEqual(d.action, "apply")

    def test_refused_version_is_not_retried(self):
        f = Failure(NEW, "refused", "haproxy -dW -c: ...", False, 1, 0)
        d = policy.decide(situation(failure=f))
        self.assertEqual((d.action, d.result), ("blocked", "refused"))
        self.assertIn("imaging-lb retry", d.reason)

    def test_an_operator_retry_applies_a_failed_version_again(self):
        f = Failure(NEW, "rolled-back", "gate", False, 1, 0)
        self.assertEqual(policy.decide(situation(failure=f, commands=frozenset({"retry"}))).action, "apply")

    def test_a_transient_failure_backs_off_then_retries(self):
        f = Failure(NEW, "failed", "S3 SlowDown", True, 2, 1060.0)
        d = policy.decide(situation(failure=f))
        self.assertEqual((d.action, d.result), ("backoff", "retrying"))
        self.assertIn("attempt 3 in 60s", d.reason)
        self.assertEqual(policy.decide(situation(failure=f, now=1060.0)).action, "apply")

    def test_retry_delays_grow_and_are_capped(self):
        self.assertEqual([policy.retry_delay(n) for n in (1, 2, 3, 4, 8, 20)], [30, 60, 120, 240, 3600, 3600])


class Role(unittest.TestCase):
    ADDRS = "1: lo    inet 127.0.0.1/8 scope host lo\n2: eth1    inet 10.0.2.100/32 scope global eth1\n"

    def test_holding_the_first_vip_is_master(self):
        self.assertEqual(policy.role_of(self.ADDRS, "10.0.2.100", True), "MASTER")

    def test_a_look_alike_address_is_not_the_vip(self):
        self.assertEqual(policy.role_of(self.ADDRS.replace("10.0.2.100", "10.0.2.1000"), "10.0.2.100", True), "BACKUP")

    def test_no_peer_is_single(self):
        self.assertEqual(policy.role_of(self.ADDRS, "10.0.2.100", False), "single")

    def test_behind_nlbs_no_node_is_master_so_the_secondary_goes_first(self):
        # ha.vipMode nlb: bundle.env has MASTER_VIP empty (both nodes serve, nothing floats), so neither node
        # is MASTER whatever addresses it holds, and the pair rolls secondary first, primary after it reports.
        both_hold_addresses = self.ADDRS + "3: eth1    inet 10.0.2.20/32 scope global eth1\n"
        self.assertEqual(policy.role_of(both_hold_addresses, "", True), "BACKUP")
        neither = dict(role="BACKUP", peer=peer(role="BACKUP"))
        self.assertEqual(policy.decide(situation(node_role="secondary", **neither)).action, "apply")
        self.assertEqual(policy.decide(situation(node_role="primary", **neither)).action, "wait")


class ThreeNodes(unittest.TestCase):
    """Three nodes behind NLBs (vipMode nlb): bundle.env's PEERS and ROLL_AFTER give the roll order lb-b, lb-c,
    lb-a (the secondaries by name, the primary last); one node applies at a time."""
    AFTER = {"lb-a": frozenset({"lb-b", "lb-c"}), "lb-b": frozenset(), "lb-c": frozenset({"lb-b"})}

    @staticmethod
    def status(result="applied", release=OLD, **extra):
        return {"result": result, "appliedRelease": release, "desiredRelease": RELEASE, "role": "BACKUP", **extra}

    def decide(self, me, statuses, ages=None, **changes):
        others = tuple(Peer(n, statuses[n], (ages or {}).get(n, 5.0), STALE_AFTER) for n in sorted(statuses) if n != me)
        base = dict(node_role="primary" if me == "lb-a" else "secondary", role="BACKUP", peer=None, others=others, after=self.AFTER[me])
        base.update(changes)
        return policy.decide(situation(**base))

    def test_a_release_rolls_one_node_at_a_time_in_the_roll_order_whatever_order_the_agents_run_in(self):
        for turn in (["lb-a", "lb-b", "lb-c"], ["lb-a", "lb-c", "lb-b"], ["lb-c", "lb-b", "lb-a"]):
            statuses = {n: self.status() for n in ("lb-a", "lb-b", "lb-c")}
            applied = {n: OLD for n in statuses}
            order = []
            for _ in range(6):
                for me in turn:
                    if applied[me] == NEW:
                        continue
                    d = self.decide(me, statuses, applied_version=applied[me])
                    if d.action == "apply":
                        self.assertEqual([n for n, st in statuses.items() if st["result"] == "applying"], [], f"{me} starts while another applies")
                        statuses[me] = self.status("applying")
                        order.append(me)
                    else:
                        self.assertEqual(d.action, "wait", d.reason)
                # The node applying finishes before the next poll of the others.
                for n, st in statuses.items():
                    if st["result"] == "applying":
                        statuses[n] = self.status(release=RELEASE)
                        applied[n] = NEW
            self.assertEqual(order, ["lb-b", "lb-c", "lb-a"], f"agents run in the order {turn}")

    def test_the_primary_waits_for_both_secondaries(self):
        d = self.decide("lb-a", {"lb-a": self.status(), "lb-b": self.status(release=RELEASE), "lb-c": self.status()}, waiting_since=990.0)
        self.assertEqual(d.action, "wait")
        self.assertIn("roll order: lb-c applies before this node", d.reason)
        done = self.decide("lb-a", {"lb-a": self.status(), "lb-b": self.status(release=RELEASE), "lb-c": self.status(release=RELEASE)})
        self.assertEqual((done.action, done.reason), ("apply", f"lb-b, lb-c applied release {RELEASE}"))

    def test_no_node_starts_while_another_is_applying_even_the_first(self):
        d = self.decide("lb-b", {"lb-a": self.status("applying"), "lb-b": self.status(), "lb-c": self.status()})
        self.assertEqual(d.action, "wait")
        self.assertIn("lb-a is applying", d.reason)
        stale = self.decide("lb-b", {"lb-a": self.status("applying"), "lb-b": self.status(), "lb-c": self.status()}, ages={"lb-a": 999.0})
        self.assertEqual(stale.action, "apply", "a stale applying status does not block")

    def test_a_silent_node_is_skipped_a_failed_one_holds_an_operator_releases(self):
        silent = self.decide("lb-c", {"lb-a": self.status(), "lb-b": self.status(), "lb-c": self.status()}, ages={"lb-b": 999.0})
        self.assertEqual(silent.action, "apply")
        self.assertIn("silent (lb-b)", silent.reason)
        failed = {"lb-a": self.status(), "lb-b": self.status("rolled-back", error="gate failed"), "lb-c": self.status()}
        held = self.decide("lb-c", failed)
        self.assertEqual((held.action, held.result), ("hold", "held"))
        self.assertIn("lb-b did not apply release", held.reason)
        self.assertEqual(self.decide("lb-a", failed).action, "hold", "the primary holds too")
        self.assertEqual(self.decide("lb-c", failed, commands=frozenset({"release"})).action, "apply")

    def test_a_node_before_that_never_applies_makes_it_hold_after_the_peer_wait(self):
        d = self.decide("lb-c", {"lb-a": self.status(), "lb-b": self.status("waiting-for-peer"), "lb-c": self.status()}, waiting_since=0.0, peer_wait_seconds=600)
        self.assertEqual(d.action, "hold")

    def test_secrets_follow_the_roll_order(self):
        def others(b_secrets):
            return (Peer("lb-a", self.status(secrets={"version": "v1"}), 5.0, STALE_AFTER), Peer("lb-b", self.status(secrets=b_secrets), 5.0, STALE_AFTER))
        after = self.AFTER["lb-c"]
        self.assertEqual(policy.decide_secrets("v2", "v1", None, "BACKUP", "secondary", None, frozenset(), others({"version": "v1"}), after).action, "wait")
        self.assertEqual(policy.decide_secrets("v2", "v1", None, "BACKUP", "secondary", None, frozenset(), others({"version": "v2"}), after).action, "apply")
        self.assertEqual(policy.decide_secrets("v2", "v1", None, "BACKUP", "secondary", None, frozenset(), others({"version": "v1", "failedVersion": "v2"}), after).action, "hold")
        first = (Peer("lb-a", self.status(), 5.0, STALE_AFTER), Peer("lb-c", self.status(), 5.0, STALE_AFTER))
        self.assertEqual(policy.decide_secrets("v2", "v1", None, "BACKUP", "secondary", None, frozenset(), first, self.AFTER["lb-b"]).action, "apply")


class Secrets(unittest.TestCase):
    def s(self, **changes):
        base = dict(now=100000.0, refreshed_at=100000.0 - 3600, checked_at=100000.0 - 3600, interval=86400.0,
                    next_try_at=None, commands=frozenset(), peer_waiting=False, waiting=False)
        base.update(changes)
        return SecretsSituation(**base)

    def test_due_daily_not_before(self):
        self.assertFalse(policy.secrets_due(self.s()))
        self.assertTrue(policy.secrets_due(self.s(refreshed_at=0.0)))

    def test_an_operator_refresh_is_due_at_once(self):
        self.assertTrue(policy.secrets_due(self.s(commands=frozenset({"refresh"}))))

    def test_waiting_rechecks_every_30s_not_every_poll(self):
        self.assertFalse(policy.secrets_due(self.s(waiting=True, checked_at=100000.0 - 10)))
        self.assertTrue(policy.secrets_due(self.s(waiting=True, checked_at=100000.0 - 31)))
        self.assertTrue(policy.secrets_due(self.s(peer_waiting=True, checked_at=100000.0 - 31)))

    def test_a_failed_fetch_is_retried_at_its_time(self):
        self.assertFalse(policy.secrets_due(self.s(refreshed_at=0.0, next_try_at=100010.0)))
        self.assertTrue(policy.secrets_due(self.s(next_try_at=99999.0)))

    def test_a_failed_secrets_version_does_not_loop(self):
        d = policy.decide_secrets("v2", "v1", "v2", "single", "single", None, frozenset())
        self.assertEqual(d.action, "blocked")
        self.assertEqual(policy.decide_secrets("v3", "v1", "v2", "single", "single", None, frozenset()).action, "apply")
        self.assertEqual(policy.decide_secrets("v2", "v1", "v2", "single", "single", None, frozenset({"refresh"})).action, "apply")

    def test_the_master_refreshes_after_its_peer(self):
        p = peer(role="BACKUP", secrets={"version": "v1"})
        self.assertEqual(policy.decide_secrets("v2", "v1", None, "MASTER", "primary", p, frozenset()).action, "wait")
        p2 = peer(role="BACKUP", secrets={"version": "v2"})
        self.assertEqual(policy.decide_secrets("v2", "v1", None, "MASTER", "primary", p2, frozenset()).action, "apply")
        p3 = peer(role="BACKUP", secrets={"version": "v1", "failedVersion": "v2"})
        self.assertEqual(policy.decide_secrets("v2", "v1", None, "MASTER", "primary", p3, frozenset()).action, "hold")

    def test_unchanged_secrets_are_idle(self):
        self.assertEqual(policy.decide_secrets("v1", "v1", None, "MASTER", "primary", peer(), frozenset()), Decision("idle", "applied", ""))


if __name__ == "__main__":
    unittest.main()
